package procmeta

import (
	"slices"
	"strings"
	"testing"
)

func TestParseResourceAttributes(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "   ", want: nil},
		{in: "a=b", want: []string{"a=b"}},
		{in: " a = b , c=d ", want: []string{"a=b", "c=d"}},
		{in: "a=b,", want: []string{"a=b"}},
		{in: "a=", want: []string{"a="}},
		{in: "a=x%2Cy%3Dz%20w", want: []string{"a=x,y=z w"}},
		{in: "a=1+2", want: []string{"a=1+2"}}, // percent-encoding, not form encoding
		{in: "a=b=c", want: []string{"a=b=c"}},
		{in: "a=1,b=2,a=3", want: []string{"a=3", "b=2"}},
		{in: "a=b,c", wantErr: true},
		{in: "=b", wantErr: true},
		{in: "a=%zz", wantErr: true},
		{in: "a=%2", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseResourceAttributes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if tt.wantErr {
			if got != nil {
				t.Errorf("%q: kept %q despite the error", tt.in, attrStrings(got))
			}
			continue
		}
		if s := attrStrings(got); !slices.Equal(s, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.in, s, tt.want)
		}
	}
}

func TestScanOTelEnv(t *testing.T) {
	env := func(entries ...string) string { return strings.Join(entries, "\x00") + "\x00" }
	long := strings.Repeat("v", 3*envReadBuf) // spans several reader buffers
	tooLong := strings.Repeat("x", maxEnvValue+1)
	tests := []struct {
		name          string
		in            string
		service, attr string
	}{
		{"empty", "", "", ""},
		{"none", env("PATH=/bin", "HOME=/root"), "", ""},
		{"both", env("A=1", "OTEL_SERVICE_NAME=svc", "OTEL_RESOURCE_ATTRIBUTES=a=b"), "svc", "a=b"},
		{"no trailing NUL", "A=1\x00OTEL_SERVICE_NAME=svc", "svc", ""},
		{"first wins", env("OTEL_SERVICE_NAME=one", "OTEL_SERVICE_NAME=two"), "one", ""},
		{"similar names", env("OTEL_SERVICE_NAME_X=no", "XOTEL_SERVICE_NAME=no", "OTEL_SERVICE_NAME"), "", ""},
		{"empty value", env("OTEL_SERVICE_NAME=", "OTEL_RESOURCE_ATTRIBUTES=a=b"), "", "a=b"},
		{"long entries skipped", env("BIG="+long, "OTEL_SERVICE_NAME=svc", "BIG2="+long), "svc", ""},
		{"long value kept", env("OTEL_RESOURCE_ATTRIBUTES=k="+long, "OTEL_SERVICE_NAME=svc"), "svc", "k=" + long},
		{"too long dropped", env("OTEL_RESOURCE_ATTRIBUTES="+tooLong, "OTEL_SERVICE_NAME=svc"), "svc", ""},
		{"at the limit", env("OTEL_SERVICE_NAME=" + tooLong[1:]), tooLong[1:], ""},
		{"too long at EOF", "OTEL_SERVICE_NAME=" + tooLong, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			service, attr, err := scanOTelEnv(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if service != tt.service || attr != tt.attr {
				t.Errorf("got (%.40q, %.40q) lengths %d, %d; want (%.40q, %.40q) lengths %d, %d",
					service, attr, len(service), len(attr), tt.service, tt.attr, len(tt.service), len(tt.attr))
			}
		})
	}
}
