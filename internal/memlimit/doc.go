// Package memlimit keeps weft's resident set under a memory cap: it sets
// the Go runtime's soft limit to the cap less the resident pages the
// runtime does not count (the executable's, shared mappings), so the
// collector works harder before the cap is near, and when the live heap still grows past a mark (state
// that collecting cannot free: connections, reassembly, spans waiting) it
// tells the pipeline to shed new kernel data events until the heap is back
// under a lower mark. Every shed event is counted.
package memlimit
