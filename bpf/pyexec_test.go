package bpf

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pythons are the CPython interpreters of this machine the tests inspect
// (pyenv's shared-libpython build with DWARF, Debian's stripped one).
func pythons(t *testing.T) []string {
	var out []string
	for _, p := range []string{"/usr/bin/python3.11"} {
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	if p, err := exec.LookPath("python3"); err == nil {
		if real, err := exec.Command(p, "-c", "import sys; print(sys.executable, end='')").Output(); err == nil {
			out = append(out, string(real))
		}
	}
	if len(out) == 0 {
		t.Skip("no python3 here")
	}
	return out
}

// startPython runs a CPython that sleeps, for inspection.
func startPython(t *testing.T, exe string) int {
	cmd := exec.Command(exe, "-c", "import time; print('up', flush=True); time.sleep(60)")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 3)
	done := make(chan error, 1)
	go func() { _, err := out.Read(buf); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("python did not start")
	}
	return cmd.Process.Pid
}

func TestInspectPython(t *testing.T) {
	for _, exe := range pythons(t) {
		t.Run(filepath.Base(filepath.Dir(exe))+"/"+filepath.Base(exe), func(t *testing.T) {
			pid := startPython(t, exe)
			if !IsPythonProcess(uint32(pid)) {
				t.Fatalf("%s not recognised as python", exe)
			}
			rt, err := InspectPython(uint32(pid))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", rt)
			if rt.Version != "3.11" {
				t.Fatalf("version %q, want 3.11", rt.Version)
			}
			// The runtime's address must be readable memory of the process
			// holding the main interpreter pointer (non-zero).
			mem, err := os.Open("/proc/" + itoa(pid) + "/mem")
			if err != nil {
				t.Fatal(err)
			}
			defer mem.Close()
			read := func(addr uint64, what string) uint64 {
				t.Helper()
				b := make([]byte, 8)
				if _, err := mem.ReadAt(b, int64(addr)); err != nil {
					t.Fatalf("read %s at %#x: %v", what, addr, err)
				}
				return le64(b)
			}
			// The chain the kernel side walks: the main interpreter, its
			// first thread state, whose native thread id is the main
			// thread's (= pid). A wrong address or offset breaks it.
			o := rt.Offsets
			interp := read(rt.Runtime+uint64(o.InterpMain), "_PyRuntime.interpreters.main")
			ts := read(interp+uint64(o.ThreadsHead), "interp->threads.head")
			if tid := read(ts+uint64(o.TSNativeTID), "tstate->native_thread_id"); tid != uint64(pid) {
				t.Fatalf("main thread state's native_thread_id = %d, want %d", tid, pid)
			}
			if cf := read(ts+uint64(o.TSCFrame), "tstate->cframe"); cf == 0 {
				t.Fatal("main thread state has no cframe")
			}
		})
	}
}

// TestPyTableMatchesDWARF checks the table against every interpreter here
// that carries DWARF.
func TestPyTableMatchesDWARF(t *testing.T) {
	checked := 0
	for _, exe := range pythons(t) {
		pid := startPython(t, exe)
		rt, err := InspectPython(uint32(pid))
		if err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(rt.File)
		if err != nil {
			t.Fatal(err)
		}
		d, err := f.DWARF()
		if err != nil {
			f.Close()
			continue // stripped
		}
		o, err := pyDWARFOffsets(d)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := pyTable[rt.Version]; o != want {
			t.Errorf("%s (%s): DWARF says %+v, table %+v", rt.File, rt.Version, o, want)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no python with DWARF here")
	}
}

func itoa(n int) string {
	return string(appendInt(nil, n))
}

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func le64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}
