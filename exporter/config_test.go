package exporter

import (
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"
)

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(*Config) // applied to DefaultConfig
	}{
		{
			name: "nothing set",
			env:  nil,
			want: func(*Config) {},
		},
		{
			name: "every variable",
			env: map[string]string{
				"OTEL_TRACES_EXPORTER":           "OTLP",
				"OTEL_EXPORTER_OTLP_ENDPOINT":    "https://collector:4318",
				"OTEL_EXPORTER_OTLP_PROTOCOL":    "grpc",
				"OTEL_EXPORTER_OTLP_HEADERS":     "api-key=s3cr%20t, x-tenant = a=b ",
				"OTEL_EXPORTER_OTLP_TIMEOUT":     "2500",
				"OTEL_EXPORTER_OTLP_CERTIFICATE": "/etc/ca.pem",
				"OTEL_EXPORTER_OTLP_INSECURE":    "true",
				"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
				"OTEL_RESOURCE_ATTRIBUTES":       "deployment.environment.name=prod,k8s.cluster.name=eu%2C1",
				"OTEL_BSP_MAX_QUEUE_SIZE":        "100",
				"OTEL_BSP_SCHEDULE_DELAY":        "250",
				"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "50",
				"OTEL_BSP_EXPORT_TIMEOUT":        "7000",
				"WEFT_JSONL_PATH":                "/var/log/weft.jsonl",
			},
			want: func(c *Config) {
				c.Exporter = "otlp"
				c.Endpoint = "https://collector:4318"
				c.Protocol = "grpc"
				c.Headers = map[string]string{"api-key": "s3cr t", "x-tenant": "a=b"}
				c.Timeout = 2500 * time.Millisecond
				c.Certificate = "/etc/ca.pem"
				c.Insecure = true
				c.Compression = "gzip"
				c.ResourceAttributes = map[string]string{"deployment.environment.name": "prod", "k8s.cluster.name": "eu,1"}
				c.MaxQueueSize = 100
				c.ScheduleDelay = 250 * time.Millisecond
				c.MaxExportBatchSize = 50
				c.ExportTimeout = 7 * time.Second
				c.JSONLPath = "/var/log/weft.jsonl"
			},
		},
		{
			name: "traces-specific variables win",
			env: map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT":           "http://generic:4318",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT":    "http://traces:4318/custom",
				"OTEL_EXPORTER_OTLP_PROTOCOL":           "grpc",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL":    "http/protobuf",
				"OTEL_EXPORTER_OTLP_HEADERS":            "a=1,b=2",
				"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "c=3",
				"OTEL_EXPORTER_OTLP_TIMEOUT":            "1000",
				"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT":     "2000",
				"OTEL_EXPORTER_OTLP_CERTIFICATE":        "/generic.pem",
				"OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": "/traces.pem",
				"OTEL_EXPORTER_OTLP_INSECURE":           "false",
				"OTEL_EXPORTER_OTLP_TRACES_INSECURE":    "true",
				"OTEL_EXPORTER_OTLP_COMPRESSION":        "none",
				"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
			},
			want: func(c *Config) {
				c.Endpoint = "http://generic:4318"
				c.TracesEndpoint = "http://traces:4318/custom"
				c.Protocol = "http/protobuf"
				c.Headers = map[string]string{"c": "3"}
				c.Timeout = 2 * time.Second
				c.Certificate = "/traces.pem"
				c.Insecure = true
				c.Compression = "gzip"
			},
		},
		{
			name: "empty values count as unset",
			env:  map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "", "OTEL_TRACES_EXPORTER": "  ", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": ""},
			want: func(*Config) {},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(envFunc(tt.env))
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			want := DefaultConfig()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("FromEnv =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestFromEnvErrors(t *testing.T) {
	env := map[string]string{
		"OTEL_TRACES_EXPORTER":           "otlp,console",
		"OTEL_EXPORTER_OTLP_TIMEOUT":     "10s",
		"OTEL_EXPORTER_OTLP_INSECURE":    "maybe",
		"OTEL_EXPORTER_OTLP_HEADERS":     "good=1,novalue,=x",
		"OTEL_RESOURCE_ATTRIBUTES":       "bad=%zz",
		"OTEL_BSP_MAX_QUEUE_SIZE":        "lots",
		"OTEL_BSP_SCHEDULE_DELAY":        "-5",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1.5",
	}
	cfg, err := FromEnv(envFunc(env))
	if err == nil {
		t.Fatal("FromEnv accepted bad values")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{
		"OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_INSECURE",
		`OTEL_EXPORTER_OTLP_HEADERS: "novalue"`, `OTEL_EXPORTER_OTLP_HEADERS: "=x"`,
		"OTEL_RESOURCE_ATTRIBUTES", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_SCHEDULE_DELAY",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
	} {
		if !containsLine(lines, want) {
			t.Errorf("no error line names %s in:\n%v", want, err)
		}
	}
	if len(lines) != 9 {
		t.Errorf("got %d error lines, want one per problem (9):\n%v", len(lines), err)
	}
	if !maps.Equal(cfg.Headers, map[string]string{"good": "1"}) {
		t.Errorf("headers = %v, want the good item kept", cfg.Headers)
	}
}

func containsLine(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, sub) {
			return true
		}
	}
	return false
}

func TestResolvedExporter(t *testing.T) {
	tests := []struct {
		exporter, endpoint, tracesEndpoint, want string
	}{
		{"", "", "", "console"},
		{"", "http://c:4318", "", "otlp"},
		{"", "", "http://c:4318/v1/traces", "otlp"},
		{"jsonl", "http://c:4318", "", "jsonl"},
		{"none", "", "", "none"},
	}
	for _, tt := range tests {
		c := Config{Exporter: tt.exporter, Endpoint: tt.endpoint, TracesEndpoint: tt.tracesEndpoint}
		if got := c.ResolvedExporter(); got != tt.want {
			t.Errorf("%+v: ResolvedExporter = %q, want %q", tt, got, tt.want)
		}
	}
}

func TestResolvedEndpoint(t *testing.T) {
	tests := []struct {
		protocol, endpoint, tracesEndpoint, want string
	}{
		{"http/protobuf", "", "", "http://localhost:4318/v1/traces"},
		{"http/protobuf", "http://c:4318", "", "http://c:4318/v1/traces"},
		{"http/protobuf", "http://c:4318/", "", "http://c:4318/v1/traces"},
		{"http/protobuf", "https://c/otlp", "", "https://c/otlp/v1/traces"},
		{"http/protobuf", "http://c:4318", "http://t:4318/mine", "http://t:4318/mine"},
		{"http/protobuf", "", "http://t:4318", "http://t:4318"}, // used as is, no path added
		{"grpc", "", "", "http://localhost:4317"},
		{"grpc", "http://c:4317", "", "http://c:4317"},
		{"grpc", "c:4317", "https://t:4317", "https://t:4317"},
	}
	for _, tt := range tests {
		c := Config{Protocol: tt.protocol, Endpoint: tt.endpoint, TracesEndpoint: tt.tracesEndpoint}
		if got := c.ResolvedEndpoint(); got != tt.want {
			t.Errorf("%+v: ResolvedEndpoint = %q, want %q", tt, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   []string // one error line each, by prefix; none for a valid config
	}{
		{"defaults", func(*Config) {}, nil},
		{"otlp grpc host:port", func(c *Config) { c.Exporter = "otlp"; c.Protocol = "grpc"; c.Endpoint = "c:4317"; c.Insecure = true }, nil},
		{"unknown exporter", func(c *Config) { c.Exporter = "zipkin" }, []string{"exporter (OTEL_TRACES_EXPORTER)"}},
		{"otlp problems", func(c *Config) {
			c.Exporter = "otlp"
			c.Protocol = "http/json"
			c.Compression = "zstd"
			c.Timeout = 0
			c.Headers = map[string]string{"bad key": "v"}
		}, []string{
			"otlp protocol (OTEL_EXPORTER_OTLP_PROTOCOL)",
			"otlp compression (OTEL_EXPORTER_OTLP_COMPRESSION)",
			"otlp timeout (OTEL_EXPORTER_OTLP_TIMEOUT)",
			"otlp headers (OTEL_EXPORTER_OTLP_HEADERS)",
		}},
		{"http endpoint without scheme", func(c *Config) { c.Endpoint = "collector:4318" }, []string{"otlp endpoint"}},
		{"grpc endpoint with a bad scheme", func(c *Config) { c.Protocol = "grpc"; c.Endpoint = "ftp://c:4317" }, []string{"otlp endpoint"}},
		{"otlp fields ignored for console", func(c *Config) { c.Exporter = "console"; c.Protocol = "http/json"; c.Timeout = 0 }, nil},
		{"jsonl without path", func(c *Config) { c.Exporter = "jsonl"; c.JSONLPath = "" }, []string{"jsonl path (WEFT_JSONL_PATH)"}},
		{"batch processor", func(c *Config) {
			c.MaxQueueSize = 10
			c.MaxExportBatchSize = 20
			c.ScheduleDelay = 0
			c.ExportTimeout = -time.Second
		}, []string{
			"max export batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)",
			"schedule delay (OTEL_BSP_SCHEDULE_DELAY)",
			"export timeout (OTEL_BSP_EXPORT_TIMEOUT)",
		}},
		{"sizes not positive", func(c *Config) { c.MaxQueueSize = 0; c.MaxExportBatchSize = -1 }, []string{
			"max queue size (OTEL_BSP_MAX_QUEUE_SIZE)",
			"max export batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)",
		}},
		{"retry intervals", func(c *Config) { c.RetryInitialInterval = time.Second; c.RetryMaxInterval = time.Millisecond }, []string{"retry max interval"}},
		{"empty resource key", func(c *Config) { c.ResourceAttributes = map[string]string{"": "x"} }, []string{"resource attributes (OTEL_RESOURCE_ATTRIBUTES)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.change(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate = nil, want %d problems", len(tt.want))
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Errorf("Validate gave %d lines, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for _, w := range tt.want {
				if !containsLine(lines, w) {
					t.Errorf("no line starts with %q in:\n%v", w, err)
				}
			}
		})
	}
}

func TestProtocolHint(t *testing.T) {
	tests := []struct {
		protocol, endpoint string
		hint               bool
	}{
		{"http/protobuf", "http://c:4317", true},
		{"http/protobuf", "http://c:4318", false},
		{"grpc", "http://c:4318", true},
		{"grpc", "c:4318", true},
		{"grpc", "c:4317", false},
		{"grpc", "https://c", false},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Protocol, c.Endpoint = tt.protocol, tt.endpoint
		if got := protocolHint(c); (got != "") != tt.hint {
			t.Errorf("%s %s: hint %q, want one: %v", tt.protocol, tt.endpoint, got, tt.hint)
		}
	}
	c := DefaultConfig()
	c.Exporter, c.Endpoint = ExporterConsole, "http://c:4317"
	if got := protocolHint(c); got != "" {
		t.Errorf("console exporter got hint %q", got)
	}
}

// TestDestination: the start-up line names an endpoint only for OTLP.
func TestDestination(t *testing.T) {
	for _, tc := range []struct {
		c    Config
		want string
	}{
		{Config{Exporter: ExporterConsole, Endpoint: "http://collector:4318"}, "stdout"},
		{Config{}, "stdout"},
		{Config{Exporter: ExporterJSONL, JSONLPath: "/tmp/spans.jsonl"}, "/tmp/spans.jsonl"},
		{Config{Exporter: ExporterNone}, "nowhere"},
		{Config{Endpoint: "http://collector:4318"}, "http://collector:4318/v1/traces"},
		{Config{Endpoint: "collector:4317", Protocol: ProtocolGRPC}, "collector:4317"},
	} {
		if got := tc.c.Destination(); got != tc.want {
			t.Errorf("%+v: Destination() = %q, want %q", tc.c, got, tc.want)
		}
	}
}
