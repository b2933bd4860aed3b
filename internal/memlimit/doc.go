// Package memlimit keeps weft under a memory cap: it sets the Go
// runtime's soft limit below the cap, so the collector works harder before
// the cap is near, and when the live heap still grows past a mark (state
// that collecting cannot free: connections, reassembly, spans waiting) it
// tells the pipeline to shed new kernel data events until the heap is back
// under a lower mark. Every shed event is counted.
package memlimit
