// Package http1 rebuilds HTTP/1.0 and HTTP/1.1 exchanges from the two byte
// streams of one TCP connection, as the kernel saw them move.
//
// It keeps only what a span needs (method, path, status, host, user agent,
// trace context, body sizes) and steps over bodies by length without
// buffering them, so a connection costs at most two bounded head buffers and
// a bounded queue of pipelined requests whatever the peers send. Bytes weft
// did not capture arrive as skips: inside a body of known length they are
// stepped over; inside a head they cost that message and the direction
// waits for a segment that starts a new one.
package http1
