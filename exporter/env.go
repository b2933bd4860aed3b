package exporter

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// FromEnv returns DefaultConfig overlaid with the OTel SDK environment
// variables read through getenv (os.Getenv in the agent, a map in tests).
// An empty variable counts as unset, as the specification asks. For every
// OTLP setting the OTEL_EXPORTER_OTLP_TRACES_* variable wins over the
// generic one; headers are not merged, the traces list replaces the generic
// one. The error lists every value that does not parse, one line each; the
// combination is checked by Config.Validate.
func FromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	p := envParser{getenv: getenv}

	if v := p.get("OTEL_TRACES_EXPORTER"); v != "" {
		c.Exporter = strings.ToLower(v)
		if strings.Contains(v, ",") {
			p.fail("OTEL_TRACES_EXPORTER", v, errors.New("weft sends to one exporter only"))
		}
	}
	c.Endpoint = p.get("OTEL_EXPORTER_OTLP_ENDPOINT")
	c.TracesEndpoint = p.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if _, v := p.signal("PROTOCOL"); v != "" {
		c.Protocol = strings.ToLower(v)
	}
	if name, v := p.signal("HEADERS"); v != "" {
		c.Headers = p.keyValues(name, v)
	}
	if name, v := p.signal("TIMEOUT"); v != "" {
		c.Timeout = p.millis(name, v)
	}
	if _, v := p.signal("CERTIFICATE"); v != "" {
		c.Certificate = v
	}
	if _, v := p.signal("CLIENT_CERTIFICATE"); v != "" {
		c.ClientCertificate = v
	}
	if _, v := p.signal("CLIENT_KEY"); v != "" {
		c.ClientKey = v
	}
	if name, v := p.signal("INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			p.fail(name, v, errors.New("want true or false"))
		}
		c.Insecure = b
	}
	if _, v := p.signal("COMPRESSION"); v != "" {
		c.Compression = strings.ToLower(v)
	}
	if v := p.get("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		c.ResourceAttributes = p.keyValues("OTEL_RESOURCE_ATTRIBUTES", v)
	}
	if v := p.get("OTEL_BSP_MAX_QUEUE_SIZE"); v != "" {
		c.MaxQueueSize = p.int("OTEL_BSP_MAX_QUEUE_SIZE", v)
	}
	if v := p.get("OTEL_BSP_SCHEDULE_DELAY"); v != "" {
		c.ScheduleDelay = p.millis("OTEL_BSP_SCHEDULE_DELAY", v)
	}
	if v := p.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"); v != "" {
		c.MaxExportBatchSize = p.int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", v)
	}
	if v := p.get("OTEL_BSP_EXPORT_TIMEOUT"); v != "" {
		c.ExportTimeout = p.millis("OTEL_BSP_EXPORT_TIMEOUT", v)
	}
	if v := p.get("WEFT_JSONL_PATH"); v != "" {
		c.JSONLPath = v
	}
	return c, errors.Join(p.errs...)
}

// envParser reads variables and collects what does not parse, so one run
// reports every bad variable instead of the first.
type envParser struct {
	getenv func(string) string
	errs   []error
}

func (p *envParser) get(name string) string { return strings.TrimSpace(p.getenv(name)) }

// signal returns the traces-specific variable for an OTLP setting when set,
// else the generic one, with the name of the one it used.
func (p *envParser) signal(setting string) (string, string) {
	name := "OTEL_EXPORTER_OTLP_TRACES_" + setting
	if v := p.get(name); v != "" {
		return name, v
	}
	name = "OTEL_EXPORTER_OTLP_" + setting
	return name, p.get(name)
}

func (p *envParser) fail(name, value string, err error) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q: %w", name, value, err))
}

func (p *envParser) int(name, v string) int {
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, errors.New("want an integer"))
	}
	return n
}

// millis parses the specification's integer milliseconds.
func (p *envParser) millis(name, v string) time.Duration {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		p.fail(name, v, errors.New("want a non-negative integer of milliseconds"))
		return 0
	}
	return time.Duration(n) * time.Millisecond
}

// keyValues parses the W3C-baggage-like list the specification uses for
// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES: "k=v,k2=v2",
// spaces around keys and values trimmed, values percent-decoded. Values may
// contain "=". A later duplicate key wins; a bad item is reported and
// skipped.
func (p *envParser) keyValues(name, s string) map[string]string {
	out := make(map[string]string)
	for item := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			p.errs = append(p.errs, fmt.Errorf("%s: %q is not key=value", name, item))
			continue
		}
		dv, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("%s: value of %q: %w", name, k, err))
			continue
		}
		out[k] = dv
	}
	return out
}
