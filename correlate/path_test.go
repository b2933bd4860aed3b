package correlate

import "testing"

func TestIsIDSegment(t *testing.T) {
	tests := []struct {
		seg  string
		want bool
	}{
		// Identifiers.
		{"42", true},
		{"0", true},
		{"2024", true},
		{"123e4567-e89b-12d3-a456-426614174000", true},
		{"123E4567-E89B-12D3-A456-426614174000", true},
		{"abcdefab-cdef-abcd-efab-cdefabcdefab", true}, // no digits: only the UUID rule sees it
		{"5f8d0d55b54764421b7156c9", true},             // MongoDB ObjectId
		{"da39a3ee5e6b4b0d3255bfef95601890afd80709", true},
		{"deadbeefdeadbeef", true}, // 16 hex, no digits
		{"order-12345", true},
		{"2024-01-31", true},
		{"INV2024001", true},
		{"a1b2c3", true},
		{"3f2a9c1", true},
		{"cus_NffrFeUfNV2Hib", true},
		{"01ARZ3NDEKTSV4RRFFQ69G5FAV", true}, // ULID
		{"img_20240101.png", true},
		// Names.
		{"", false},
		{"items", false},
		{"v1", false},
		{"v2", false},
		{"v1beta1", false},
		{"v1alpha1", false},
		{"oauth2", false},
		{"sha256", false},
		{"x86_64", false},
		{"i18n", false},
		{"utf-8", false},
		{"deadbeef", false},
		{"abcdefab-cdef-abcd-efab-cdefabcdefa", false}, // one short of a UUID
		{"abcdefabxcdef-abcd-efab-cdefabcdefab", false},
		{"oauth2-authorization-server", false},
		{"how-to-use-http2-in-go", false},
		{"openapi.json", false},
		{"10.0.0.1", false},
		{"a1b2", false},
		{"thisisalongwordwithoutdigits", false},
	}
	for _, tt := range tests {
		if got := isIDSegment(tt.seg); got != tt.want {
			t.Errorf("isIDSegment(%q) = %v, want %v", tt.seg, got, tt.want)
		}
	}
}

func TestRequestPath(t *testing.T) {
	tests := []struct{ target, want string }{
		{"/items/42", "/items/42"},
		{"/items/42?q=secret", "/items/42"},
		{"/a#frag", "/a"},
		{"/", "/"},
		{"", ""},
		{"http://example.com/a/b?x=1", "/a/b"},
		{"HTTPS://example.com:8443/a", "/a"},
		{"http://example.com", "/"},
		{"*", "*"},
		{"example.com:443", "example.com:443"},
		{"httpx://example.com/a", "httpx://example.com/a"},
	}
	for _, tt := range tests {
		if got := requestPath(tt.target); got != tt.want {
			t.Errorf("requestPath(%q) = %q, want %q", tt.target, got, tt.want)
		}
	}
}

func TestSpanName(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"GET", "/items/42", "GET /items/{id}"},
		{"GET", "/", "GET /"},
		{"POST", "/users/123e4567-e89b-12d3-a456-426614174000/orders/7/", "POST /users/{id}/orders/{id}/"},
		{"GET", "/v1/objects/5f8d0d55b54764421b7156c9", "GET /v1/objects/{id}"},
		{"DELETE", "//double//1", "DELETE //double//{id}"},
		{"GET", "/1/2/3/4/5/6/7/8/9", "GET /{id}/{id}/{id}/{id}/{id}/{id}/{id}/{id}/{id}"},
		{"HTTP", "/static/app.js", "HTTP /static/app.js"},
	}
	for _, tt := range tests {
		if got := spanName(tt.method, tt.path); got != tt.want {
			t.Errorf("spanName(%q, %q) = %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}

func TestSpanNameOneAllocation(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		_ = spanName("GET", "/1/2/3/4/5/6/7/8/9")
	})
	if allocs != 1 {
		t.Errorf("spanName allocates %v times, want 1", allocs)
	}
}
