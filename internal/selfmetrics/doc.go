// Package selfmetrics registers weft's own counters — plain atomics on the
// hot path — as OpenTelemetry observable instruments, so each package
// states its counters once.
package selfmetrics
