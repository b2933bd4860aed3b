// Package http2 rebuilds HTTP/2 exchanges, gRPC calls among them, from the
// two byte streams of one TCP connection (h2c with prior knowledge, or the
// plaintext of h2 once TLS capture provides it: both start with the
// connection preface).
//
// Frames are read by their 9-byte headers and stepped over by length, so
// DATA payloads are counted, never buffered, and bytes weft did not capture
// inside a payload cost nothing but the payload's own fields. Header blocks
// (HEADERS, PUSH_PROMISE and their CONTINUATIONs) are decoded with one HPACK
// decoder per direction whose dynamic table lives as long as the connection.
//
// The decoder knows when it does not know: a header block that was not
// captured whole, or a capture that began mid-connection, leaves entries of
// the dynamic table unknown. References to them decode as unknown fields
// (the exchange is marked Partial and the field left empty), never as a
// guess; static-table and literal fields still decode, and the table is
// trusted again once the entries inserted since the loss provably fill it.
// Frame boundaries follow from lengths, so only uncaptured bytes that hide
// a frame header lose the framing; the direction then waits for a segment
// that starts with plausible frames.
package http2
