package procmeta

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
)

// unknownService is the service name of last resort, as the SDKs use it.
const unknownService = "unknown_service"

// errNoEquals marks a member of OTEL_RESOURCE_ATTRIBUTES without a value.
var errNoEquals = errors.New("missing '='")

// parseResourceAttributes parses an OTEL_RESOURCE_ATTRIBUTES value as the
// SDK specification says: comma-separated key=value pairs, whitespace
// around keys and values trimmed, values percent-decoded. Any malformed
// member discards the whole value (the specification's "SHOULD discard the
// entire value"), so a process is never half-described. Empty members
// (a trailing comma) are skipped; a repeated key keeps its last value.
func parseResourceAttributes(s string) ([]attribute.KeyValue, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var kvs []attribute.KeyValue
	for member := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(member) == "" {
			continue
		}
		k, v, ok := strings.Cut(member, "=")
		if !ok {
			return nil, fmt.Errorf("parse %s member %q: %w", envResourceAttributes, member, errNoEquals)
		}
		key := strings.TrimSpace(k)
		if key == "" {
			return nil, fmt.Errorf("parse %s member %q: empty key", envResourceAttributes, member)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("parse %s key %q: %w", envResourceAttributes, key, err)
		}
		kv := attribute.String(key, val)
		if i := indexKey(kvs, kv.Key); i >= 0 {
			kvs[i] = kv
		} else {
			kvs = append(kvs, kv)
		}
	}
	return kvs, nil
}

func indexKey(kvs []attribute.KeyValue, k attribute.Key) int {
	for i := range kvs {
		if kvs[i].Key == k {
			return i
		}
	}
	return -1
}

// newProcess makes the immutable identity of a process from what /proc
// said (info may be empty: the fallback for a process already gone).
//
// service.name is the first of: OTEL_SERVICE_NAME, service.name in
// OTEL_RESOURCE_ATTRIBUTES (the precedence the process's own SDK applies),
// the Enricher's service name (from its container and pod), then the
// process's name (processName).
//
// comm is a kernel task name the caller has for the process; it must be
// the thread-group leader's, never that of the thread that moved the bytes
// (a worker thread may have renamed itself: dig's are isc-net-0000), and
// is only used when /proc and argv say nothing.
//
// The Enricher's attributes (container.*, k8s.*) follow the process's, and
// the process's own OTEL_RESOURCE_ATTRIBUTES come after weft's attributes
// and override them, as they would in its SDK, except process.pid: weft's
// pid is of the root namespace, the one the rest of its data refers to.
func newProcess(pid uint32, comm string, info procInfo, host string, enr enrichment) *Process {
	p := &Process{
		PID:     pid,
		ExeName: comm,
		ExePath: info.exePath,
		Command: info.command,
	}
	p.ExeName = processName(info, comm)
	// A malformed value is dropped whole; there is nobody to report it to
	// but the process's owner, who sees the same in their SDK's logs.
	env, _ := parseResourceAttributes(info.resourceAttrs)

	p.ServiceName = strings.TrimSpace(info.serviceName)
	if p.ServiceName == "" {
		if i := indexKey(env, semconv.ServiceNameKey); i >= 0 {
			p.ServiceName = env[i].Value.AsString()
		}
	}
	if p.ServiceName == "" {
		p.ServiceName = enr.serviceName
	}
	if p.ServiceName == "" {
		p.ServiceName = p.ExeName
	}
	if p.ServiceName == "" {
		p.ServiceName = unknownService
	}

	attrs := make([]attribute.KeyValue, 0, 6+len(enr.attrs)+len(env))
	attrs = append(attrs, semconv.ServiceName(p.ServiceName), semconv.ProcessPID(int(pid)))
	if p.ExeName != "" {
		attrs = append(attrs, semconv.ProcessExecutableName(p.ExeName))
	}
	if p.ExePath != "" {
		attrs = append(attrs, semconv.ProcessExecutablePath(p.ExePath))
	}
	if p.Command != "" {
		attrs = append(attrs, semconv.ProcessCommand(p.Command))
	}
	if host != "" {
		attrs = append(attrs, semconv.HostName(host))
	}
	attrs = addEnrichment(attrs, enr)
	for _, kv := range env {
		switch kv.Key {
		case semconv.ServiceNameKey, semconv.ProcessPIDKey:
			continue
		}
		if i := indexKey(attrs, kv.Key); i >= 0 {
			attrs[i] = kv
		} else {
			attrs = append(attrs, kv)
		}
	}
	p.Attributes = attrs
	return p
}

// processName names a process by, in order: the base name of its
// executable, the base name of its argv[0], the thread-group leader's comm
// from /proc/PID/comm, and last the comm the caller has. Every one of them
// belongs to the process as a whole, not to one of its threads.
func processName(info procInfo, comm string) string {
	if info.exePath != "" {
		return path.Base(info.exePath)
	}
	if name := argv0Name(info.command); name != "" {
		return name
	}
	if info.comm != "" {
		return info.comm
	}
	return comm
}

// argv0Name is the base name of the program argv[0] names. Only the first
// word counts: a process that rewrote its argument block (nginx's
// "nginx: worker process") leaves a title there, not a path. A login
// shell's leading '-' is dropped.
func argv0Name(argv0 string) string {
	word, _, _ := strings.Cut(strings.TrimSpace(argv0), " ")
	word = strings.TrimSuffix(word, ":")
	name := strings.TrimPrefix(path.Base(word), "-")
	if name == "." || name == "/" {
		return ""
	}
	return name
}
