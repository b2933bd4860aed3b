package bpf

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/btf"
)

// TestEventLayout checks that the generated Go structs have the C sizes, so
// in-place decoding reads the fields the kernel wrote. Unprivileged.
func TestEventLayout(t *testing.T) {
	spec, err := loadWeft()
	if err != nil {
		t.Fatal(err)
	}
	for name, goSize := range map[string]uintptr{
		"weft_conn_event": unsafe.Sizeof(ConnEvent{}),
		"weft_data_event": unsafe.Sizeof(DataEvent{}),
		"weft_proc_event": unsafe.Sizeof(ProcEvent{}),
	} {
		var typ *btf.Struct
		if err := spec.Types.TypeByName(name, &typ); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cSize, err := btf.Sizeof(typ)
		if err != nil {
			t.Fatal(err)
		}
		if uintptr(cSize) != goSize {
			t.Errorf("%s: C size %d, Go size %d", name, cSize, goSize)
		}
	}
}

// requireKernel skips only when not root; as root on a kernel without the
// features it fails, so a skip never hides a regression.
func requireKernel(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs")
	}
	if err := Check(); err != nil {
		t.Fatalf("feature check: %v", err)
	}
}

type recorder struct {
	mu     sync.Mutex
	opens  []ConnEvent
	closes []ConnEvent
	data   map[[2]uint64][]byte // (gen, dir) -> bytes in offset order
	gaps   int

	argv0      string
	envHasPath bool
}

func (r *recorder) ConnOpen(ev *ConnEvent) {
	r.mu.Lock()
	r.opens = append(r.opens, *ev)
	r.mu.Unlock()
}
func (r *recorder) ConnClose(ev *ConnEvent) {
	r.mu.Lock()
	r.closes = append(r.closes, *ev)
	r.mu.Unlock()
}
func (r *recorder) Data(ev *DataEvent, payload []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := [2]uint64{ev.Gen, uint64(ev.Dir)}
	if uint64(len(r.data[k])) != ev.Offset {
		r.gaps++
	}
	r.data[k] = append(r.data[k], payload...)
}
func (r *recorder) ProcessExit(*ProcEvent)   {}
func (r *recorder) StreamCause(*StreamEvent) {}

func (r *recorder) ProcessInfo(ev *ProcInfoEvent, argv, env []byte) {
	if int(ev.Tgid) != os.Getpid() {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.argv0 = string(bytes.SplitN(argv, []byte{0}, 2)[0])
	r.envHasPath = bytes.Contains(env, []byte("PATH="))
}
func (r *recorder) Tick(int64) {}

func (r *recorder) streams(port uint16) (client, server map[uint8][]byte, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	client, server = map[uint8][]byte{}, map[uint8][]byte{}
	var cgen, sgen uint64
	for _, o := range r.opens {
		_, remote := o.Tuple()
		local, _ := o.Tuple()
		if o.Role == RoleClient && remote.Port() == port {
			cgen = o.Gen
		}
		if o.Role == RoleServer && local.Port() == port {
			sgen = o.Gen
		}
	}
	if cgen == 0 || sgen == 0 {
		return nil, nil, false
	}
	for d := uint8(0); d < 2; d++ {
		client[d] = r.data[[2]uint64{cgen, uint64(d)}]
		server[d] = r.data[[2]uint64{sgen, uint64(d)}]
	}
	return client, server, true
}

func TestCaptureTCP(t *testing.T) {
	requireKernel(t)
	tr, err := Load(Config{SelfPID: 1, CaptureSize: 64}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{data: map[[2]uint64][]byte{}}
	done := make(chan error, 1)
	go func() { done <- tr.Run(rec) }()
	defer func() {
		tr.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	request := []byte("hello from the client")
	response := bytes.Repeat([]byte("r"), 100) // longer than the capture size
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, len(request))
		io.ReadFull(c, buf)
		c.Write(response)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write(request)
	io.ReadAll(c)
	c.Close()
	ln.Close()

	deadline := time.Now().Add(5 * time.Second)
	for {
		client, server, ok := rec.streams(port)
		if ok && len(client[DirIngress]) >= 64 && len(server[DirIngress]) == len(request) {
			if !bytes.Equal(client[DirEgress], request) || !bytes.Equal(server[DirIngress], request) {
				t.Fatalf("request bytes: client sent %q, server got %q", client[DirEgress], server[DirIngress])
			}
			if !bytes.Equal(server[DirEgress], response[:64]) || !bytes.Equal(client[DirIngress], response[:64]) {
				t.Fatalf("response not truncated to 64 bytes: server %d client %d", len(server[DirEgress]), len(client[DirIngress]))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching events (ok=%v client=%v server=%v)", ok, client, server)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rec.mu.Lock()
	argv0, envHasPath := rec.argv0, rec.envHasPath
	rec.mu.Unlock()
	if argv0 != os.Args[0] || !envHasPath {
		t.Fatalf("process info: argv[0] %q (want %q), env has PATH: %v", argv0, os.Args[0], envHasPath)
	}
	lost, err := tr.Lost()
	if err != nil {
		t.Fatal(err)
	}
	if len(lost) == 0 {
		t.Fatal("no per-cpu lost counters")
	}
	if tr.Malformed() != 0 {
		t.Fatalf("%d malformed samples", tr.Malformed())
	}
}

type udpRecorder struct {
	recorder
	datagrams []udpDatagram
}

type udpDatagram struct {
	dir  uint8
	peer string
	data string
	pid  uint32
}

func (r *udpRecorder) Data(ev *DataEvent, payload []byte) {
	if ev.Proto != ProtoUDP {
		return
	}
	r.mu.Lock()
	r.datagrams = append(r.datagrams, udpDatagram{ev.Dir, ev.PeerAddr().String(), string(payload), ev.Tgid})
	r.mu.Unlock()
}

// TestBPFUDP: datagrams on unconnected (sendto/recvfrom) and connected
// (write/read) UDP sockets arrive whole, with the peer of each.
func TestBPFUDP(t *testing.T) {
	requireKernel(t)
	tr, err := Load(Config{SelfPID: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	rec := &udpRecorder{recorder: recorder{data: map[[2]uint64][]byte{}}}
	done := make(chan error, 1)
	go func() { done <- tr.Run(rec) }()
	defer func() {
		tr.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cli, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Write([]byte("ping-weft-udp")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, from, err := srv.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "ping-weft-udp" {
		t.Fatalf("server read %q, %v", buf[:n], err)
	}
	if _, err := srv.WriteToUDP([]byte("pong-weft-udp"), from); err != nil {
		t.Fatal(err)
	}
	if n, err = cli.Read(buf); err != nil || string(buf[:n]) != "pong-weft-udp" {
		t.Fatalf("client read %q, %v", buf[:n], err)
	}
	srvAddr, cliAddr := srv.LocalAddr().String(), cli.LocalAddr().String()
	want := []udpDatagram{
		{DirEgress, srvAddr, "ping-weft-udp", uint32(os.Getpid())},
		{DirIngress, cliAddr, "ping-weft-udp", uint32(os.Getpid())},
		{DirEgress, cliAddr, "pong-weft-udp", uint32(os.Getpid())},
		{DirIngress, srvAddr, "pong-weft-udp", uint32(os.Getpid())},
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec.mu.Lock()
		var got []udpDatagram
		for _, d := range rec.datagrams {
			if d.pid == uint32(os.Getpid()) && bytes.Contains([]byte(d.data), []byte("-weft-udp")) {
				got = append(got, d)
			}
		}
		rec.mu.Unlock()
		if len(got) >= len(want) {
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("datagram %d = %+v, want %+v (all: %+v)", i, got[i], want[i], got)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d datagrams, want %d: %+v", len(got), len(want), got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
