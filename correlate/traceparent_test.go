package correlate

import (
	"fmt"
	"strings"
	"testing"
)

const (
	validTraceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	validParentID = "00f067aa0ba902b7"
	validTP       = "00-" + validTraceID + "-" + validParentID + "-01"
)

func TestParseTraceParent(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"valid", validTP, true},
		{"valid unsampled", "00-" + validTraceID + "-" + validParentID + "-00", true},
		{"surrounding whitespace", " \t" + validTP + " ", true},
		{"future version", "cc-" + validTraceID + "-" + validParentID + "-01", true},
		{"future version with more fields", "cc-" + validTraceID + "-" + validParentID + "-01-what-the-future-holds", true},
		{"empty", "", false},
		{"version ff", "ff-" + validTraceID + "-" + validParentID + "-01", false},
		{"version 00 too long", validTP + "-00", false},
		{"future version, no dash after flags", "cc-" + validTraceID + "-" + validParentID + "-01x", false},
		{"uppercase trace id", "00-" + strings.ToUpper(validTraceID) + "-" + validParentID + "-01", false},
		{"uppercase version", "0A-" + validTraceID + "-" + validParentID + "-01", false},
		{"uppercase flags", "00-" + validTraceID + "-" + validParentID + "-0A", false},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + "-" + validParentID + "-01", false},
		{"zero parent id", "00-" + validTraceID + "-" + strings.Repeat("0", 16) + "-01", false},
		{"short trace id", "00-" + validTraceID[1:] + "-" + validParentID + "-01", false},
		{"long parent id", "00-" + validTraceID + "-" + validParentID + "0-01", false},
		{"non-hex", "00-" + validTraceID[:31] + "g-" + validParentID + "-01", false},
		{"wrong separator", "00_" + validTraceID + "-" + validParentID + "-01", false},
		{"short", validTP[:54], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, ok := parseTraceParent(tt.in)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if tp.traceID.String() != validTraceID || tp.parentID.String() != validParentID {
				t.Errorf("ids = %s, %s", tp.traceID, tp.parentID)
			}
		})
	}
	tp, _ := parseTraceParent(validTP)
	if tp.version != 0 || !tp.flags.IsSampled() {
		t.Errorf("version %d flags %v, want 0 and sampled", tp.version, tp.flags)
	}
}

func TestBoundTraceState(t *testing.T) {
	members := func(n, size int) string { // n members of size characters
		m := make([]string, n)
		for i := range m {
			m[i] = fmt.Sprintf("v%02d=%s", i, strings.Repeat("x", size-4))
		}
		return strings.Join(m, ",")
	}
	long := strings.Repeat("y", 600)
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"kept", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"},
		{"trimmed", "  a=b \t", "a=b"},
		{"control byte", "a=b\x00", ""},
		{"non-ASCII", "a=é", ""},
		{"32 members", members(32, 14), members(32, 14)},
		{"33 members", members(33, 14), members(32, 14)},
		{"512 characters", members(15, 31) + ",v15=" + strings.Repeat("x", 28), members(15, 31) + ",v15=" + strings.Repeat("x", 28)},
		{"513 characters", members(15, 31) + ",v15=" + strings.Repeat("x", 29), members(15, 31)},
		{"over 512 characters", members(20, 30), members(16, 30)},
		{"one huge member", long, ""},
		{"huge member last", "a=b," + long, "a=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := boundTraceState(tt.in)
			if got != tt.want {
				t.Errorf("got %q (len %d), want %q (len %d)", got, len(got), tt.want, len(tt.want))
			}
			if len(got) > maxTraceStateLen || strings.Count(got, ",") >= maxTraceStateMembers {
				t.Errorf("result exceeds the bounds: len %d, %d members", len(got), strings.Count(got, ",")+1)
			}
		})
	}
}

// FuzzTraceParent checks that parsing never panics and that whatever it
// accepts is well formed: valid ids, and the header is their exact
// lowercase encoding.
func FuzzTraceParent(f *testing.F) {
	for _, s := range []string{
		validTP, "cc-" + validTraceID + "-" + validParentID + "-01-x", "", "00",
		"00-" + strings.Repeat("0", 32) + "-" + validParentID + "-01",
		"ff-" + validTraceID + "-" + validParentID + "-01",
		strings.ToUpper(validTP), validTP + "-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, ok := parseTraceParent(s)
		if !ok {
			return
		}
		if !tp.traceID.IsValid() || !tp.parentID.IsValid() || tp.version == 0xff {
			t.Fatalf("accepted %q with invalid fields %+v", s, tp)
		}
		want := fmt.Sprintf("%02x-%s-%s-%02x", tp.version, tp.traceID, tp.parentID, byte(tp.flags))
		trimmed := strings.Trim(s, " \t")
		if !strings.HasPrefix(trimmed, want) {
			t.Fatalf("accepted %q, which does not start with its own encoding %q", s, want)
		}
		if rest := trimmed[len(want):]; (tp.version == 0 && rest != "") || (rest != "" && rest[0] != '-') {
			t.Fatalf("accepted %q with trailing %q", s, rest)
		}
	})
}
