// Package detect picks the protocol of each connection from its first
// captured bytes and hands the connection to that protocol's parser.
//
// Detection happens once per connection, in user space, because the first
// bytes say more than ports do (services listen anywhere) and because a
// wrong guess is cheap to recover from here. Connections that match nothing
// are ignored for the rest of their life at the cost of a counter, so
// unparsed traffic (TLS without uprobes, databases not yet supported)
// costs almost nothing. Each protocol is one entry in a registry.
package detect
