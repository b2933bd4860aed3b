// Package procmeta resolves a pid to what a span's resource says about the
// process: service name (OTEL_SERVICE_NAME from the process's own
// environment, else its executable name), executable, pid and host. It reads
// /proc once per process, when weft first sees one of its connections, and
// caches the answer, so short-lived processes such as curl keep their
// identity after they exit.
package procmeta
