// Package conn keeps the table of live connections and rebuilds each
// direction's byte stream from the kernel's data events by offset: chunks
// from different CPUs are reordered, lost or uncaptured bytes become explicit
// skips, and memory per connection and in total is bounded. It never looks
// inside the bytes.
package conn
