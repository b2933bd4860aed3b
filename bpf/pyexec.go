package bpf

import (
	"bufio"
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// PyOffsets are the positions in CPython's runtime structures the kernel
// side reads to find, from a socket syscall, the asyncio task (coroutine)
// the calling thread is running: _PyRuntime -> the main interpreter -> its
// thread states (matched by native thread id) -> the thread's innermost
// C frame -> its current Python frame -> the chain of previous frames.
// The outermost coroutine frame of the innermost run of coroutine frames
// is the running task's coroutine; its address names the task.
type PyOffsets struct {
	InterpMain       uint32 // _PyRuntimeState.interpreters.main
	ThreadsHead      uint32 // PyInterpreterState.threads.head
	TSNext           uint32 // PyThreadState.next
	TSNativeTID      uint32 // PyThreadState.native_thread_id
	TSCFrame         uint32 // PyThreadState.cframe
	CFrameCurrent    uint32 // _PyCFrame.current_frame
	FramePrevious    uint32 // _PyInterpreterFrame.previous
	FrameOwner       uint32 // _PyInterpreterFrame.owner
	OwnedByGenerator uint8  // the owner value of a generator's (coroutine's) frame
}

// pyTable holds the offsets of stripped CPython builds by minor version,
// read on 2026-12-04 from the DWARF of CPython 3.11.7 (pyenv, shared
// libpython) and checked against Debian's stripped 3.11.2 by the tests.
// The frame layout changed in 3.12 and the C frame went in 3.13: other
// versions are tracked only when their DWARF is present and has these
// fields.
var pyTable = map[string]PyOffsets{
	"3.11": {InterpMain: 48, ThreadsHead: 16, TSNext: 8, TSNativeTID: 160, TSCFrame: 56, CFrameCurrent: 8, FramePrevious: 48, FrameOwner: 69, OwnedByGenerator: 1},
}

// PyRuntime is what weft learnt about one Python process.
type PyRuntime struct {
	Version string // "3.11"
	// Runtime is the address of _PyRuntime in the process.
	Runtime uint64
	Offsets PyOffsets
	From    string // "dwarf" or "table"
	File    string // the executable or libpython that holds the runtime
}

// ErrNotPython is returned for a process that does not run CPython.
var ErrNotPython = errors.New("not a cpython process")

// libpythonRe matches the CPython shared library and its version.
var libpythonRe = regexp.MustCompile(`/libpython(3\.\d+)[a-z]*\.so`)

// pythonExeRe matches a CPython executable's name and its version.
var pythonExeRe = regexp.MustCompile(`^python(3\.\d+)[a-z]*$`)

// IsPythonProcess reports cheaply whether pid's executable is named like
// CPython's (python3.11, python3) or it maps libpython.
func IsPythonProcess(pid uint32) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	base := filepath.Base(strings.TrimSuffix(exe, " (deleted)"))
	return base == "python3" || base == "python" || pythonExeRe.MatchString(base)
}

// mapping is one file mapping of a process.
type mapping struct {
	start, offset uint64
	path          string
}

// InspectPython finds the CPython runtime of process pid: the file that
// defines _PyRuntime (the executable, or a libpython it maps), where that
// symbol sits in the process, and the structure offsets (DWARF when the
// file has it, else pyTable by version).
func InspectPython(pid uint32) (*PyRuntime, error) {
	maps, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return nil, err
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return nil, err
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	var candidates []string // files that may hold the runtime, libpython first
	byPath := map[string][]mapping{}
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || !strings.HasPrefix(fs[5], "/") {
			continue
		}
		p := fs[5]
		r := strings.SplitN(fs[0], "-", 2)
		start, err1 := strconv.ParseUint(r[0], 16, 64)
		off, err2 := strconv.ParseUint(fs[2], 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if _, ok := byPath[p]; !ok && libpythonRe.MatchString(p) {
			candidates = append(candidates, p)
		}
		byPath[p] = append(byPath[p], mapping{start: start, offset: off, path: p})
	}
	candidates = append(candidates, exe)
	root := fmt.Sprintf("/proc/%d/root", pid)
	for _, p := range candidates {
		rt, err := inspectPythonFile(root+p, p, byPath[p])
		if errors.Is(err, ErrNotPython) {
			continue
		}
		return rt, err
	}
	return nil, ErrNotPython
}

// inspectPythonFile reads one file mapped at ms; path is its name as the
// process sees it (for the version and for messages).
func inspectPythonFile(open, path string, ms []mapping) (*PyRuntime, error) {
	f, err := elf.Open(open)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	sym, ok := dynSymbol(f, "_PyRuntime")
	if !ok {
		return nil, ErrNotPython
	}
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%s: cpython on %v: only amd64 is supported", path, f.Machine)
	}
	rt := &PyRuntime{File: path, Version: pythonVersion(f, path)}
	addr, err := runtimeAddress(f, sym, ms)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rt.Runtime = addr
	if o, ok := pyTable[rt.Version]; ok {
		rt.Offsets, rt.From = o, "table"
		return rt, nil
	}
	d, err := f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("%s: python %s is not in the offset table and has no DWARF", path, rt.Version)
	}
	if rt.Offsets, err = pyDWARFOffsets(d); err != nil {
		return nil, fmt.Errorf("%s: python %s: %w", path, rt.Version, err)
	}
	rt.From = "dwarf"
	return rt, nil
}

// dynSymbol finds an exported (or, failing that, local) symbol's value.
func dynSymbol(f *elf.File, name string) (uint64, bool) {
	for _, get := range []func() ([]elf.Symbol, error){f.DynamicSymbols, f.Symbols} {
		syms, err := get()
		if err != nil {
			continue
		}
		for _, s := range syms {
			if s.Name == name && s.Value != 0 {
				return s.Value, true
			}
		}
	}
	return 0, false
}

// pythonVersion is "3.11" from Py_Version (3.11+ exports it as
// PY_VERSION_HEX), else from the file's name.
func pythonVersion(f *elf.File, path string) string {
	if v, ok := dynSymbol(f, "Py_Version"); ok {
		for _, s := range f.Sections {
			if s.Type == elf.SHT_NOBITS || v < s.Addr || v+4 > s.Addr+s.Size {
				continue
			}
			b := make([]byte, 4)
			if _, err := s.ReadAt(b, int64(v-s.Addr)); err == nil {
				hex := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
				return fmt.Sprintf("%d.%d", hex>>24, hex>>16&0xff)
			}
		}
	}
	base := filepath.Base(path)
	if m := libpythonRe.FindStringSubmatch(path); m != nil {
		return m[1]
	}
	if m := pythonExeRe.FindStringSubmatch(base); m != nil {
		return m[1]
	}
	return "unknown"
}

// runtimeAddress places a symbol's link-time address in the process: the
// mapping of the PT_LOAD segment holding it (the one with the largest file
// offset not above the segment's) fixes where the segment's addresses went.
func runtimeAddress(f *elf.File, vaddr uint64, ms []mapping) (uint64, error) {
	if f.Type == elf.ET_EXEC {
		return vaddr, nil // not position independent
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_LOAD || vaddr < p.Vaddr || vaddr >= p.Vaddr+p.Memsz {
			continue
		}
		var best *mapping
		for i := range ms {
			m := &ms[i]
			if m.offset <= p.Off && (best == nil || m.offset > best.offset) {
				best = m
			}
		}
		if best == nil {
			return 0, errors.New("_PyRuntime's segment is not mapped")
		}
		// best.start holds file offset best.offset, which the segment links
		// at p.Vaddr - (p.Off - best.offset).
		return best.start + vaddr - (p.Vaddr - p.Off + best.offset), nil
	}
	return 0, errors.New("_PyRuntime is in no loadable segment")
}

// pyDWARFOffsets reads PyOffsets from CPython's own type information.
func pyDWARFOffsets(d *dwarf.Data) (PyOffsets, error) {
	want := map[string][]string{
		"pyruntimestate":      {"interpreters.main"},
		"_is":                 {"threads.head"},
		"_ts":                 {"next", "native_thread_id", "cframe"},
		"_PyCFrame":           {"current_frame"},
		"_PyInterpreterFrame": {"previous", "owner"},
	}
	got := map[string]int64{}
	r := d.Reader()
	for len(want) > 0 {
		e, err := r.Next()
		if err != nil {
			return PyOffsets{}, fmt.Errorf("read dwarf: %w", err)
		}
		if e == nil {
			break
		}
		if e.Tag != dwarf.TagStructType {
			if e.Children && e.Tag != dwarf.TagCompileUnit {
				r.SkipChildren()
			}
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		paths, ok := want[name]
		if decl, _ := e.Val(dwarf.AttrDeclaration).(bool); !ok || decl {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		t, err := d.Type(e.Offset)
		if e.Children {
			r.SkipChildren()
		}
		st, isStruct := t.(*dwarf.StructType)
		if err != nil || !isStruct {
			continue
		}
		for _, p := range paths {
			if off, ok := fieldOffset(st, strings.Split(p, ".")); ok {
				got[name+"."+p] = off
			}
		}
		delete(want, name)
	}
	need := []string{"pyruntimestate.interpreters.main", "_is.threads.head", "_ts.next", "_ts.native_thread_id",
		"_ts.cframe", "_PyCFrame.current_frame", "_PyInterpreterFrame.previous", "_PyInterpreterFrame.owner"}
	v := make([]uint32, len(need))
	for i, k := range need {
		off, ok := got[k]
		if !ok {
			return PyOffsets{}, fmt.Errorf("dwarf: no %s", k)
		}
		v[i] = uint32(off)
	}
	return PyOffsets{InterpMain: v[0], ThreadsHead: v[1], TSNext: v[2], TSNativeTID: v[3], TSCFrame: v[4],
		CFrameCurrent: v[5], FramePrevious: v[6], FrameOwner: v[7], OwnedByGenerator: 1}, nil
}

// fieldOffset follows a path of (possibly nested, by-value) fields.
func fieldOffset(st *dwarf.StructType, path []string) (int64, bool) {
	var off int64
	for i, name := range path {
		var hit *dwarf.StructField
		for _, f := range st.Field {
			if f.Name == name {
				hit = f
				break
			}
		}
		if hit == nil {
			return 0, false
		}
		off += hit.ByteOffset
		if i == len(path)-1 {
			return off, true
		}
		t := hit.Type
		for {
			if td, ok := t.(*dwarf.TypedefType); ok {
				t = td.Type
				continue
			}
			break
		}
		next, ok := t.(*dwarf.StructType)
		if !ok {
			return 0, false
		}
		st = next
	}
	return off, true
}
