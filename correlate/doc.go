// Package correlate turns protocol exchanges into spans and spans into
// distributed traces.
//
// Conversion (http.go and one file per protocol) makes one span per
// exchange: SERVER or CLIENT by the traced process's end of the
// connection, named and attributed by the semantic conventions, or for a
// server the trace and parent that an incoming W3C traceparent names.
//
// The join stage (join.go) then holds spans for a bounded time and number
// and emits them as whole trees:
//
//   - the client and server spans of one request, both seen on this host,
//     are matched by the connection's addresses and the TCP sequence number
//     of the request's first byte, which both ends share; the server span
//     becomes the client span's child;
//   - a client span a process made while serving a request becomes that
//     request's server span's child, when a rule decides which request it
//     was made for (nest.go); otherwise it stays a root and is counted;
//   - an explicit traceparent wins: the server span keeps the trace and
//     parent it names;
//   - ids are derived from the exchanges (ids.go), so the same exchanges
//     always make the same tree, and set top-down when a tree is emitted;
//   - client spans name the local service they called (peers.go), and
//     every request between two services is counted in Tempo's service
//     graph metrics (servicegraph.go), whose edge decisions (PairEdge,
//     LoneEdge) the service map shares.
//
// The package does no I/O: wall time comes from Config.Clock and process
// identity from a ProcessLookup. Add, Flush, FlushAll and ObserveAccept
// run on one goroutine, the agent's event goroutine, and share no lock.
package correlate
