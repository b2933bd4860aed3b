package bpf

import (
	"errors"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// buildGoClient builds a small net/http client with the running toolchain,
// with or without symbols and DWARF.
func buildGoClient(t *testing.T, stripped bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "client")
	args := []string{"build", "-o", out}
	if stripped {
		args = append(args, "-ldflags=-s -w")
	}
	cmd := exec.Command("go", append(args, "../e2e/testdata/loadgen")...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// TestGoTableMatchesDWARF: the table row for the toolchain that builds
// weft gives the offsets that toolchain's DWARF gives, and a stripped
// binary is inspected from the table with the same hand-off address.
func TestGoTableMatchesDWARF(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("goroutine tracking is amd64 only")
	}
	full, err := InspectGo(buildGoClient(t, false))
	if err != nil {
		t.Fatal(err)
	}
	stripped, err := InspectGo(buildGoClient(t, true))
	if err != nil {
		t.Fatal(err)
	}
	if full.From != "dwarf" || stripped.From != "table" {
		t.Fatalf("offsets from %q and %q, want dwarf and table", full.From, stripped.From)
	}
	if full.Version != runtime.Version() {
		t.Errorf("version %q, want %q", full.Version, runtime.Version())
	}
	if full.Offsets != stripped.Offsets {
		t.Errorf("goTable[%q] = %+v; this toolchain's DWARF says %+v", minorVersion(runtime.Version()), stripped.Offsets, full.Offsets)
	}
	if full.Offsets.TLSG != -8 {
		t.Errorf("g at fsbase%+d, want -8 (linux/amd64)", full.Offsets.TLSG)
	}
	if full.RoundTrip == 0 || stripped.RoundTrip == 0 {
		t.Errorf("roundTrip at %#x (dwarf) and %#x (stripped): want both found", full.RoundTrip, stripped.RoundTrip)
	}
}

func TestInspectGoNotGo(t *testing.T) {
	path, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	if _, err := InspectGo(path); !errors.Is(err, ErrNotGo) {
		t.Errorf("InspectGo(%s) = %v, want ErrNotGo", path, err)
	}
	if IsGoExecutable(path) {
		t.Errorf("IsGoExecutable(%s) = true", path)
	}
}

func TestMinorVersion(t *testing.T) {
	for in, want := range map[string]string{"go1.26.8": "go1.26", "go1.21rc1": "go1.21", "go1.22": "go1.22"} {
		if got := minorVersion(in); got != want {
			t.Errorf("minorVersion(%q) = %q, want %q", in, got, want)
		}
	}
}
