// Package correlate turns protocol exchanges into spans.
//
// Today each exchange becomes one span on its own: SERVER or CLIENT by the
// traced process's end of the connection, named and attributed by the HTTP
// semantic conventions, with fresh ids, or for a server the trace and
// parent that an incoming W3C traceparent names. Joining the client and
// server sides of one exchange and nesting outgoing calls in the request
// that caused them come later; they will sit between conversion and the
// output function, which is why conversion fills a Span and a single place
// emits it.
//
// The package does no I/O: wall time comes from Config.Clock and process
// identity from a ProcessLookup.
package correlate
