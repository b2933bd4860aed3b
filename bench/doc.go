// Package bench holds the pure parts of weft's end-to-end benchmark
// (bench/cmd/weftbench, run by make bench): a latency histogram, a reader
// for weft's /metrics text, the per-workload figures computed from
// interleaved baseline and traced runs, and the table and JSON they are
// reported as. Nothing here starts a process or reads the clock, so it is
// tested like any other code.
package bench
