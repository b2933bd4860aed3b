// Package procmeta resolves a pid to what a span's resource says about the
// process: service name (OTEL_SERVICE_NAME from the process's own
// environment, else its executable name), executable, pid and host. It reads
// /proc once per process, when weft first sees one of its connections, and
// caches the answer, so short-lived processes such as curl keep their
// identity after they exit.
//
// An optional Enricher (Config.Enricher; k8smeta.Resolver in weft) adds
// the process's container and pod: their attributes follow the process's
// own, and their service name comes after the process's OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES and before its executable's name. An answer
// the Enricher says is not final yet (a pod the informers do not know yet)
// is asked for again on later lookups, every EnrichRetry for EnrichFor.
//
// Privacy: of a process's environment only OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES are kept; of its command line only argv[0]
// (arguments often carry secrets). Other values are read in passing and
// never stored.
//
// Pids are those of the root pid namespace, as the kernel probes report
// them, so Config.ProcRoot must be the host's /proc: run with hostPID, or
// mount the host's /proc elsewhere and point ProcRoot at it.
package procmeta
