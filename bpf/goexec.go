package bpf

import (
	"debug/buildinfo"
	"debug/dwarf"
	"debug/elf"
	"debug/gosym"
	"errors"
	"fmt"
	"strings"
)

// GoOffsets are the positions in a Go binary's runtime and net/http data
// the kernel side reads to tell goroutines apart and to follow a request
// from the goroutine that makes it to the connection that carries it.
type GoOffsets struct {
	TLSG       int32  // g pointer, from the thread's fsbase
	GoID       uint32 // runtime.g.goid
	ParentGoID uint32 // runtime.g.parentGoid (Go 1.21+)
	PConnConn  uint32 // net/http.persistConn.conn
	NetFDSysfd uint32 // net.netFD.pfd.Sysfd
	// grpc-go's transport (DWARF only; 0: not hooked): the HTTP/2 stream
	// id in a server and a client stream, and each transport's net.Conn.
	GRPCServerStreamID uint32 // transport.ServerStream.Stream.id
	GRPCServerConn     uint32 // transport.http2Server.conn
	GRPCClientStreamID uint32 // transport.ClientStream.Stream.id
	GRPCClientConn     uint32 // transport.http2Client.conn
}

// grpcHooked reports whether o has every offset the grpc-go hooks read.
func (o GoOffsets) grpcHooked() bool {
	return o.GRPCServerStreamID != 0 && o.GRPCServerConn != 0 && o.GRPCClientStreamID != 0 && o.GRPCClientConn != 0
}

// GoBinary is what weft learnt from a Go executable.
type GoBinary struct {
	Version string // "go1.26.8"
	Offsets GoOffsets
	From    string // "dwarf" or "table"
	// RoundTrip is the file offset of net/http.(*persistConn).roundTrip,
	// 0 when the binary has no net/http client.
	RoundTrip uint64
	// GRPCHandleStream and GRPCClientWrite are the file offsets of grpc-go's
	// (*Server).handleStream (on the handler goroutine, with the server
	// stream) and (*http2Client).write (on the caller's goroutine, with the
	// client stream); 0 when absent or when the offsets are unknown.
	GRPCHandleStream, GRPCClientWrite uint64
	// GRPCUnhooked says why a binary that links grpc-go gets no grpc-go
	// hooks ("": hooked, or no grpc-go): its calls under concurrency stay
	// roots, which the user should hear about.
	GRPCUnhooked string
}

// ErrNotGo is returned for an executable that is not a Go program.
var ErrNotGo = errors.New("not a go binary")

// goTable holds the offsets of stripped binaries by Go minor version,
// read on 2026-12-03 from the DWARF of a net/http client built with each
// toolchain (go1.21.13, 1.22.12, 1.23.12, 1.24.13, 1.25.0, 1.26.8);
// TestGoTableMatchesDWARF checks the running toolchain's row. The net and
// net/http fields have not moved; runtime.g's have, both ways.
var goTable = map[string]GoOffsets{
	"go1.21": {TLSG: -8, GoID: 152, ParentGoID: 272, PConnConn: 80, NetFDSysfd: 16},
	"go1.22": {TLSG: -8, GoID: 152, ParentGoID: 272, PConnConn: 80, NetFDSysfd: 16},
	"go1.23": {TLSG: -8, GoID: 160, ParentGoID: 280, PConnConn: 80, NetFDSysfd: 16},
	"go1.24": {TLSG: -8, GoID: 160, ParentGoID: 280, PConnConn: 80, NetFDSysfd: 16},
	"go1.25": {TLSG: -8, GoID: 152, ParentGoID: 272, PConnConn: 80, NetFDSysfd: 16},
	"go1.26": {TLSG: -8, GoID: 152, ParentGoID: 280, PConnConn: 80, NetFDSysfd: 16},
}

const (
	roundTripSymbol        = "net/http.(*persistConn).roundTrip"
	grpcHandleStreamSymbol = "google.golang.org/grpc.(*Server).handleStream"
	grpcClientWriteSymbol  = "google.golang.org/grpc/internal/transport.(*http2Client).write"
	grpcTransport          = "google.golang.org/grpc/internal/transport."
)

// IsGoExecutable reports cheaply whether path is a Go program: it has the
// build info section every Go linker writes.
func IsGoExecutable(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return f.Section(".go.buildinfo") != nil
}

// InspectGo reads a Go executable's version, the offsets the kernel side
// needs (from DWARF when present, else from goTable) and where its
// net/http hand-off function is.
//
// DWARF is read only when the table cannot answer (a Go version it does not
// cover, or grpc-go's structs): decompressing a binary's DWARF costs about
// half a second of CPU for a mid-sized program.
func InspectGo(path string) (*GoBinary, error) { return inspectGo(path, false) }

// inspectGo is InspectGo; preferDWARF reads DWARF whenever there is some
// (tests compare it with the table).
func inspectGo(path string, preferDWARF bool) (*GoBinary, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if f.Section(".go.buildinfo") == nil {
		return nil, ErrNotGo
	}
	if f.Machine != elf.EM_X86_64 {
		return nil, fmt.Errorf("%s: go on %v: only amd64 is supported", path, f.Machine)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read go build info of %s: %w", path, err)
	}
	b := &GoBinary{Version: bi.GoVersion}
	// What the binary links decides which types DWARF must give: the walk
	// stops once it has them, and a type it looks for in vain costs a walk
	// of all the binary's DWARF (seconds for a large program).
	b.RoundTrip, err = funcFileOffset(f, roundTripSymbol)
	if err != nil && !errors.Is(err, errNoFunc) {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	withGRPC := false
	for _, m := range bi.Deps {
		withGRPC = withGRPC || m.Path == "google.golang.org/grpc"
	}
	tab, inTable := goTable[minorVersion(bi.GoVersion)]
	if off, err := tlsGOffset(f); err != nil {
		return nil, err
	} else if inTable && !withGRPC && !preferDWARF {
		b.Offsets, b.From = tab, "table"
		b.Offsets.TLSG = off
	} else if d, derr := f.DWARF(); derr == nil {
		if b.Offsets, err = dwarfOffsets(d, b.RoundTrip != 0, withGRPC); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		b.Offsets.TLSG, b.From = off, "dwarf"
	} else {
		o, ok := goTable[minorVersion(bi.GoVersion)]
		if !ok {
			return nil, fmt.Errorf("%s: stripped %s binary: no offsets for this go version (covered: go1.21 to go1.26, or any version with DWARF)", path, bi.GoVersion)
		}
		b.Offsets, b.From = o, "table"
		b.Offsets.TLSG = off
	}
	if b.Offsets.grpcHooked() {
		hs, err1 := funcFileOffset(f, grpcHandleStreamSymbol)
		cw, err2 := funcFileOffset(f, grpcClientWriteSymbol)
		if err1 == nil && err2 == nil {
			b.GRPCHandleStream, b.GRPCClientWrite = hs, cw
		} else {
			b.GRPCUnhooked = "grpc-go's stream functions not found"
		}
	} else if withGRPC {
		b.GRPCUnhooked = "grpc-go is linked but the binary has no DWARF for its transport structs (built with -ldflags=-w or stripped)"
	}
	return b, nil
}

// minorVersion turns "go1.26.8" (or "go1.26rc1") into "go1.26".
func minorVersion(v string) string {
	parts := strings.SplitN(strings.TrimPrefix(v, "go"), ".", 3)
	if len(parts) < 2 {
		return v
	}
	minor := parts[1]
	if i := strings.IndexFunc(minor, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		minor = minor[:i]
	}
	return "go" + parts[0] + "." + minor
}

// tlsGOffset is where runtime.tlsg sits from the thread pointer. A Go
// linker placing only the g slot in the TLS block puts it at -8; a
// binary with other thread-local data (cgo with C __thread variables)
// is not supported, rather than read at a guessed place.
func tlsGOffset(f *elf.File) (int32, error) {
	for _, p := range f.Progs {
		if p.Type == elf.PT_TLS && p.Memsz > 8 {
			return 0, fmt.Errorf("thread-local block of %d bytes: the goroutine slot's place is unknown", p.Memsz)
		}
	}
	return -8, nil
}

// dwarfOffsets reads the field offsets from the binary's own type info.
func dwarfOffsets(d *dwarf.Data, withHTTPClient, withGRPC bool) (GoOffsets, error) {
	want := map[string]map[string]int64{
		"runtime.g":        {"goid": -1, "parentGoid": -1},
		"net.netFD":        {"pfd": -1},
		"internal/poll.FD": {"Sysfd": -1},
	}
	if withHTTPClient {
		want["net/http.persistConn"] = map[string]int64{"conn": -1}
	}
	if withGRPC {
		want[grpcTransport+"ServerStream"] = map[string]int64{"Stream": -1}
		want[grpcTransport+"ClientStream"] = map[string]int64{"Stream": -1}
		want[grpcTransport+"Stream"] = map[string]int64{"id": -1}
		want[grpcTransport+"http2Server"] = map[string]int64{"conn": -1}
		want[grpcTransport+"http2Client"] = map[string]int64{"conn": -1}
	}
	found := 0
	r := d.Reader()
	for found < len(want) {
		e, err := r.Next()
		if err != nil {
			return GoOffsets{}, fmt.Errorf("read dwarf: %w", err)
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
		fields, ok := want[name]
		if !ok || !e.Children {
			if e.Children {
				r.SkipChildren()
			}
			continue
		}
		for {
			m, err := r.Next()
			if err != nil || m == nil || m.Tag == 0 {
				break
			}
			fname, _ := m.Val(dwarf.AttrName).(string)
			if _, ok := fields[fname]; ok {
				if off, ok := m.Val(dwarf.AttrDataMemberLoc).(int64); ok {
					fields[fname] = off
				}
			}
			if m.Children {
				r.SkipChildren()
			}
		}
		found++
	}
	get := func(t, f string) (uint32, error) {
		v, ok := want[t][f]
		if !ok || v < 0 {
			return 0, fmt.Errorf("dwarf: no %s.%s", t, f)
		}
		return uint32(v), nil
	}
	var o GoOffsets
	var err error
	if o.GoID, err = get("runtime.g", "goid"); err != nil {
		return o, err
	}
	o.ParentGoID, _ = get("runtime.g", "parentGoid") // absent before Go 1.21
	// A binary without net/http's client keeps the table's layout for the
	// fields it does not have: nothing will read them.
	o.PConnConn, _ = get("net/http.persistConn", "conn")
	pfd, _ := get("net.netFD", "pfd")
	sysfd, _ := get("internal/poll.FD", "Sysfd")
	o.NetFDSysfd = pfd + sysfd
	// grpc-go, when linked in: all or nothing.
	ss, e1 := get(grpcTransport+"ServerStream", "Stream")
	cs, e2 := get(grpcTransport+"ClientStream", "Stream")
	id, e3 := get(grpcTransport+"Stream", "id")
	sc, e4 := get(grpcTransport+"http2Server", "conn")
	cc, e5 := get(grpcTransport+"http2Client", "conn")
	if errors.Join(e1, e2, e3, e4, e5) == nil {
		// Stream is embedded by value; its id is never at offset 0 (ctx
		// comes first), so 0 can mean unknown.
		o.GRPCServerStreamID, o.GRPCClientStreamID = ss+id, cs+id
		o.GRPCServerConn, o.GRPCClientConn = sc, cc
	}
	return o, nil
}

var errNoFunc = errors.New("function not found")

// funcFileOffset finds a function's entry as a file offset, from the
// symbol table or, in a stripped binary, from .gopclntab (which Go keeps
// for its own stack traces).
func funcFileOffset(f *elf.File, name string) (uint64, error) {
	addr := uint64(0)
	if syms, err := f.Symbols(); err == nil {
		for _, s := range syms {
			if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
				addr = s.Value
				break
			}
		}
	}
	if addr == 0 {
		tab, err := pclnTable(f)
		if err != nil {
			return 0, err
		}
		fn := tab.LookupFunc(name)
		if fn == nil {
			return 0, errNoFunc
		}
		addr = fn.Entry
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_X != 0 && addr >= p.Vaddr && addr < p.Vaddr+p.Memsz {
			off := addr - p.Vaddr + p.Off
			return off + framePushOffset(p, off), nil
		}
	}
	return 0, fmt.Errorf("%s at %#x is in no executable segment", name, addr)
}

// framePushOffset finds, in the first bytes of a Go function at file
// offset off, the PUSHQ BP that follows the stack-growth check, and
// returns its distance from the entry (0 when not found). A uprobe there
// sees the same argument registers and goroutine as at the entry, is hit
// once per call (a call that grows its stack re-runs the check, not the
// push), and costs one trap, not two: the kernel emulates a push, while
// the entry's LEAQ or CMPQ must be single-stepped out of line.
func framePushOffset(p *elf.Prog, off uint64) uint64 {
	var b [32]byte
	if _, err := p.ReadAt(b[:], int64(off-p.Off)); err != nil {
		return 0
	}
	// The check is CMPQ SP, 0x10(R14) (49 3b 66 10) at the entry, or
	// after LEAQ -n(SP), R12 (4c 8d a4 24 imm32 or 4c 8d 64 24 imm8) as
	// CMPQ R12, 0x10(R14) (4d 3b 66 10); then JBE rel8 (76 xx) or rel32
	// (0f 86 imm32); then PUSHQ BP (55). Anything else: hook the entry.
	i := 0
	switch {
	case b[0] == 0x4c && b[1] == 0x8d && b[2] == 0xa4 && b[3] == 0x24:
		i = 8
	case b[0] == 0x4c && b[1] == 0x8d && b[2] == 0x64 && b[3] == 0x24:
		i = 5
	}
	if !(b[i] == 0x49 || b[i] == 0x4d) || b[i+1] != 0x3b || b[i+2] != 0x66 || b[i+3] != 0x10 {
		return 0
	}
	i += 4
	switch {
	case b[i] == 0x76:
		i += 2
	case b[i] == 0x0f && b[i+1] == 0x86:
		i += 6
	default:
		return 0
	}
	if b[i] != 0x55 {
		return 0
	}
	return uint64(i)
}

func pclnTable(f *elf.File) (*gosym.Table, error) {
	s := f.Section(".gopclntab")
	text := f.Section(".text")
	if s == nil || text == nil {
		return nil, errNoFunc
	}
	data, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf("read .gopclntab: %w", err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		return nil, fmt.Errorf("parse .gopclntab: %w", err)
	}
	return tab, nil
}
