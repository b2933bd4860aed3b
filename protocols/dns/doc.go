// Package dns pairs DNS queries with their responses, over UDP (one message
// per datagram) and TCP (two-byte length prefix, RFC 1035 4.2.2), as the
// kernel saw one socket move them.
//
// Messages are decoded with golang.org/x/net/dns/dnsmessage as far as a span
// needs (header, first question, A/AAAA answers, the EDNS extended response
// code) and as far as the capture reached: a datagram cut short still
// yields its id, question, response code and answer count. A query waits for
// the response with the same id and question from the same peer, for
// Options.Timeout at most; then, or when the socket closes first, it is
// emitted unanswered. Repeats of a waiting query (retransmissions) are
// folded into it. Which end asked is read from each message's QR bit and
// direction, so a socket weft saw no connect or accept for still gets
// client and server right.
//
// Memory per connection is bounded: Options.MaxPending queries wait at
// most, and a TCP message that spans segments is held only up to
// Options.MaxMessageBytes (the rest is stepped over by its length).
package dns
