package bpf

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// buildGoClient builds a small net/http client with the running toolchain,
// with or without symbols and DWARF. (go test puts its own GOROOT/bin
// first in PATH, so "go" is the running toolchain.)
func buildGoClient(t *testing.T, stripped bool) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "client")
	args := []string{"build", "-o", out}
	if stripped {
		args = append(args, "-ldflags=-s -w")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go toolchain on PATH: %v", err)
	}
	cmd := exec.Command(goBin, append(args, "../e2e/testdata/loadgen")...)
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
	fullPath, strippedPath := buildGoClient(t, false), buildGoClient(t, true)
	full, err := inspectGo(fullPath, true)
	if err != nil {
		t.Fatal(err)
	}
	stripped, err := InspectGo(strippedPath)
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
	// The hook sits on the frame push after the stack check: one trap
	// (an emulated push), not two.
	for path, off := range map[string]uint64{fullPath: full.RoundTrip, strippedPath: stripped.RoundTrip} {
		b := make([]byte, 1)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(b, int64(off))
		f.Close()
		if err != nil || b[0] != 0x55 {
			t.Errorf("%s: byte at the hook offset %#x is %#x (%v), want 0x55 (PUSHQ BP)", path, off, b, err)
		}
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

// TestGRPCOffsetsFromDWARF: a grpc-go program built with the repo's grpc
// version has every transport offset and both hook addresses, each on a
// frame push; a stripped one has none (no table for grpc's structs).
func TestGRPCOffsetsFromDWARF(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go toolchain on PATH: %v", err)
	}
	for _, stripped := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "grpcsrv")
		args := []string{"build", "-o", out}
		if stripped {
			args = append(args, "-ldflags=-s -w")
		}
		if b, err := exec.Command(goBin, append(args, "../e2e/testdata/grpcsrv")...).CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		bin, err := InspectGo(out)
		if err != nil {
			t.Fatal(err)
		}
		if stripped {
			if bin.GRPCHandleStream != 0 || bin.Offsets.grpcHooked() {
				t.Errorf("stripped: grpc hooks %+v, want none", bin)
			}
			if bin.GRPCUnhooked == "" {
				t.Error("stripped: no reason given for the missing grpc hooks (the user would not hear of it)")
			}
			continue
		}
		if bin.GRPCUnhooked != "" {
			t.Errorf("with DWARF: unhooked %q", bin.GRPCUnhooked)
		}
		if !bin.Offsets.grpcHooked() || bin.GRPCHandleStream == 0 || bin.GRPCClientWrite == 0 {
			t.Fatalf("grpc offsets %+v, hooks %#x %#x: want all", bin.Offsets, bin.GRPCHandleStream, bin.GRPCClientWrite)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []uint64{bin.GRPCHandleStream, bin.GRPCClientWrite} {
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, int64(off)); err != nil || b[0] != 0x55 {
				t.Errorf("byte at hook %#x is %#x (%v), want 0x55 (PUSHQ BP)", off, b, err)
			}
		}
		f.Close()
	}
}
