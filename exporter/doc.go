// Package exporter ships finished spans out of the agent: it queues them
// without ever blocking the correlator, batches them, converts each batch to
// OTLP pdata once, and hands it to one sender (OTLP gRPC, OTLP/HTTP, console
// or JSON lines). The queue is bounded and drops the oldest span when full,
// and retries are bounded in time, so a slow or absent backend costs the
// agent spans, never memory or latency.
package exporter
