package procmeta

import (
	"go.opentelemetry.io/otel/attribute"
)

// Process is the identity of one traced process. It is immutable once made.
type Process struct {
	PID         uint32
	ServiceName string
	ExeName     string // base name of /proc/PID/exe, or the kernel comm
	ExePath     string
	Command     string // argv[0]
	// Attributes are the resource attributes (semconv names) for this
	// process, service.name first.
	Attributes []attribute.KeyValue
}
