package procmeta

import (
	"go.opentelemetry.io/otel/attribute"
)

// Process is the identity of one traced process. It is immutable once made.
type Process struct {
	PID         uint32
	ServiceName string
	// ExeName is the base name of /proc/PID/exe, else of argv[0], else the
	// thread-group leader's comm: never a worker thread's name.
	ExeName string
	ExePath string
	Command string // argv[0]
	// Attributes are the resource attributes (semconv names) for this
	// process, service.name first.
	Attributes []attribute.KeyValue
}
