package correlate

import "testing"

func TestSplitHost(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"example.com", "example.com", 80, true},
		{"example.com:8080", "example.com", 8080, true},
		{"example.com:", "example.com", 80, true},
		{"10.0.0.1:443", "10.0.0.1", 443, true},
		{"[::1]:9000", "::1", 9000, true},
		{"[::1]", "::1", 80, true},
		{"::1", "::1", 80, true}, // bare IPv6: no port to split
		{"", "", 0, false},
		{":80", "", 0, false},
		{"[]:80", "", 0, false},
		{"[::1", "", 0, false},
		{"[::1]x", "", 0, false},
		{"example.com:0", "", 0, false},
		{"example.com:65536", "", 0, false},
		{"example.com:http", "", 0, false},
		{"example.com:-1", "", 0, false},
		{"exa mple.com", "", 0, false},
		{"example.com\r\n", "", 0, false},
		{"user@example.com", "", 0, false},
		{"example.com/path", "", 0, false},
		{string(make([]byte, maxHostLen+1)), "", 0, false},
	}
	for _, tt := range tests {
		host, port, ok := splitHost(tt.in, "http")
		if host != tt.host || port != tt.port || ok != tt.ok {
			t.Errorf("splitHost(%q) = %q, %d, %v; want %q, %d, %v", tt.in, host, port, ok, tt.host, tt.port, tt.ok)
		}
	}
	if _, port, _ := splitHost("example.com", "https"); port != 443 {
		t.Errorf("https default port = %d, want 443", port)
	}
}
