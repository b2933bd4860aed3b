package correlate

import (
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// grpcExchange is a gRPC call over HTTP/2 seen from role.
func grpcExchange(role conn.Role, path string, status int) *protocols.Exchange {
	ex := exchange(role, protocols.HTTP{Method: "POST", Path: path, Version: "2", Status: 200,
		Host: "orders.svc:50051", UserAgent: "grpc-go/1.85.0", GRPC: true, GRPCStatus: status})
	ex.Protocol = protocols.HTTP2
	return ex
}

func TestGRPCSpan(t *testing.T) {
	c, col := newTest(t, Config{})
	s := addOne(t, c, col, grpcExchange(conn.RoleServer, "/shop.v1.Orders/Get", 0))
	want := []string{
		"rpc.system.name=grpc",
		"rpc.method=shop.v1.Orders/Get",
		"rpc.response.status_code=OK",
		"server.address=orders.svc",
		"server.port=50051",
		"client.address=10.0.0.9",
		"network.peer.address=10.0.0.9",
		"network.peer.port=51234",
	}
	if got := attrStrings(s.Attributes); !slices.Equal(got, want) {
		t.Errorf("attributes\n got  %q\n want %q", got, want)
	}
	if s.Name != "shop.v1.Orders/Get" || s.Kind != trace.SpanKindServer || s.StatusCode != codes.Unset {
		t.Errorf("name %q kind %v status %v", s.Name, s.Kind, s.StatusCode)
	}
	if len(s.Attributes) > maxGRPCAttrs {
		t.Errorf("%d attributes, preallocated %d", len(s.Attributes), maxGRPCAttrs)
	}
	for _, kv := range s.Attributes {
		if strings.HasPrefix(string(kv.Key), "http.") || kv.Key == "url.path" {
			t.Errorf("gRPC span carries HTTP attribute %s", kv.Key)
		}
	}
}

// TestGRPCStatusRules: the server is blamed only for the codes that say
// it failed; a client span is Error for any code but OK.
func TestGRPCStatusRules(t *testing.T) {
	c, col := newTest(t, Config{})
	for code := range 18 {
		serverErr := code == 2 || code == 4 || code == 12 || code == 13 || code == 14 || code == 15
		for _, role := range []conn.Role{conn.RoleServer, conn.RoleClient} {
			s := addOne(t, c, col, grpcExchange(role, "/p.S/M", code))
			wantErr := code != 0 && (role == conn.RoleClient || serverErr)
			name := grpcCodeName(code)
			if code == 17 && name != "17" || code == 5 && name != "NOT_FOUND" {
				t.Errorf("code %d named %q", code, name)
			}
			errType := ""
			for _, kv := range s.Attributes {
				if kv.Key == "error.type" {
					errType = kv.Value.AsString()
				}
			}
			if wantErr != (s.StatusCode == codes.Error) || wantErr != (errType == name) {
				t.Errorf("%v code %d: status %v error.type %q, want error %v", role, code, s.StatusCode, errType, wantErr)
			}
		}
	}
}

func TestGRPCMethods(t *testing.T) {
	c, col := newTest(t, Config{})
	for _, tc := range []struct {
		path   string
		status int
		name   string
		attrs  []string
	}{
		{"/Svc/M", 0, "Svc/M", []string{"rpc.method=Svc/M"}},
		{"/p.S/M", 12, "grpc", []string{"rpc.method=_OTHER", "rpc.method_original=p.S/M"}},
		{"/a/b/c", 0, "grpc", []string{"rpc.method=_OTHER", "rpc.method_original=a/b/c"}},
		{"/nomethod", 0, "grpc", []string{"rpc.method=_OTHER", "rpc.method_original=nomethod"}},
		{"", 0, "grpc", nil}, // unknown (Partial): no rpc.method at all
	} {
		s := addOne(t, c, col, grpcExchange(conn.RoleClient, tc.path, tc.status))
		var got []string
		for _, a := range attrStrings(s.Attributes) {
			if strings.HasPrefix(a, "rpc.method") {
				got = append(got, a)
			}
		}
		if s.Name != tc.name || !slices.Equal(got, tc.attrs) {
			t.Errorf("%q: name %q attrs %q, want %q %q", tc.path, s.Name, got, tc.name, tc.attrs)
		}
	}
}

// TestGRPCUnknowns: no response is an error; a status that could not be
// decoded is not guessed.
func TestGRPCUnknowns(t *testing.T) {
	c, col := newTest(t, Config{})
	ex := grpcExchange(conn.RoleClient, "/p.S/M", -1)
	ex.HTTP.Status = 0
	s := addOne(t, c, col, ex)
	if s.StatusCode != codes.Error || !slices.Contains(attrStrings(s.Attributes), "error.type="+ErrorTypeNoResponse) {
		t.Errorf("no response: %v %q", s.StatusCode, attrStrings(s.Attributes))
	}
	ex = grpcExchange(conn.RoleClient, "", -1)
	ex.HTTP.Partial = true
	s = addOne(t, c, col, ex)
	for _, a := range attrStrings(s.Attributes) {
		if strings.HasPrefix(a, "rpc.response") || strings.HasPrefix(a, "error.type") {
			t.Errorf("partial exchange got %s", a)
		}
	}
	if s.StatusCode != codes.Unset {
		t.Errorf("partial exchange status %v", s.StatusCode)
	}
}

// TestGRPCTraceParent: metadata traceparent makes the server span join.
func TestGRPCTraceParent(t *testing.T) {
	c, col := newTest(t, Config{})
	ex := grpcExchange(conn.RoleServer, "/p.S/M", 0)
	ex.HTTP.TraceParent, ex.HTTP.TraceState = validTP, "k=v"
	s := addOne(t, c, col, ex)
	if s.TraceID.String() != validTraceID || s.ParentSpanID.String() != validParentID || s.TraceState != "k=v" {
		t.Errorf("server did not join: %s %s %q", s.TraceID, s.ParentSpanID, s.TraceState)
	}
}

// TestHTTP2Partial: an HTTP/2 exchange whose method and status could not
// be decoded claims neither.
func TestHTTP2Partial(t *testing.T) {
	c, col := newTest(t, Config{})
	ex := exchange(conn.RoleClient, protocols.HTTP{Version: "2", Partial: true, GRPCStatus: -1})
	ex.Protocol = protocols.HTTP2
	s := addOne(t, c, col, ex)
	for _, a := range attrStrings(s.Attributes) {
		if strings.HasPrefix(a, "http.request.method") || strings.HasPrefix(a, "error.type") || strings.HasPrefix(a, "http.response") {
			t.Errorf("partial exchange got %s", a)
		}
	}
	if s.StatusCode != codes.Unset || s.Name != otherMethodName {
		t.Errorf("partial exchange: status %v name %q", s.StatusCode, s.Name)
	}
}
