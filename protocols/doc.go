// Package protocols holds what every protocol parser shares: the Exchange a
// parser emits (one request and its response, with timings) and the Parser
// contract. Each protocol lives in its own sub-package; detect picks one per
// connection from its first bytes.
package protocols
