package recording

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"testing"

	"github.com/weftrace/weft/conn"
)

func TestRoundTrip(t *testing.T) {
	cs := []Chunk{
		{true, []byte("GET / HTTP/1.1\r\n\r\n")},
		{false, []byte("HTTP/1.1 200 OK\r\n\r\n")},
		{false, []byte("\n> 3\nnot a header\n")},
		{true, []byte{}},
		{true, []byte{0, '\n', 0xff}},
	}
	raw := Format(cs)
	want := "> 18\nGET / HTTP/1.1\r\n\r\n\n< 19\nHTTP/1.1 200 OK\r\n\r\n\n< 18\n\n> 3\nnot a header\n\n> 0\n\n> 3\n\x00\n\xff\n"
	if string(raw) != want {
		t.Fatalf("Format = %q, want %q", raw, want)
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(got, cs, func(a, b Chunk) bool { return a.ToServer == b.ToServer && bytes.Equal(a.Data, b.Data) }) {
		t.Fatalf("Parse(Format(cs)) = %v, want %v", got, cs)
	}
	if !bytes.Equal(Format(got), raw) {
		t.Fatal("Format(Parse(raw)) differs from raw")
	}
	if cs, err := Parse(nil); err != nil || len(cs) != 0 {
		t.Fatalf("Parse(nil) = %v, %v", cs, err)
	}
}

func TestParseBad(t *testing.T) {
	for _, raw := range []string{
		"x 1\na\n", ">1\na\n", "> \na\n", "> x\na\n", "> -1\n\n", "> 2\na\n", "> 1\nab\n", "> 1\na", "> 1\na\n<",
	} {
		if cs, err := Parse([]byte(raw)); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", raw, cs)
		}
	}
}

func TestStreams(t *testing.T) {
	cs := []Chunk{{true, []byte("ab")}, {false, []byte("x")}, {true, []byte("cde")}, {false, []byte("yz")}}
	toServer, toClient := Streams(cs)
	if string(toServer.Data) != "abcde" || string(toClient.Data) != "xyz" {
		t.Fatalf("streams %q, %q", toServer.Data, toClient.Data)
	}
	for off, k := range []int{0, 0, 2, 2, 2} {
		if got := toServer.ChunkAt(off); got != k {
			t.Errorf("to server: ChunkAt(%d) = %d, want %d", off, got, k)
		}
	}
	if toClient.ChunkAt(0) != 1 || toClient.ChunkAt(2) != 3 || Size(cs) != 8 {
		t.Errorf("to client: ChunkAt = %d, %d; Size = %d", toClient.ChunkAt(0), toClient.ChunkAt(2), Size(cs))
	}
}

// TestCut checks that every split and mask gives back the recording's
// bytes in order, with lost bytes as skips of the same length.
func TestCut(t *testing.T) {
	cs := []Chunk{{true, bytes.Repeat([]byte("a"), 700)}, {false, bytes.Repeat([]byte("b"), 5000)}, {true, []byte("c")}}
	r := rand.New(rand.NewPCG(1, 2))
	limit := CaptureLimit(cs, 100)
	for _, tc := range []struct {
		name  string
		split Split
		skip  Mask
	}{
		{"whole", Whole, Mask{}},
		{"bytewise", Bytewise, Mask{}},
		{"random", RandomSplit(r), Mask{}},
		{"at", SplitAt(1, 10), Mask{}},
		{"limit", Whole, limit},
		{"loss", RandomSplit(r), limit.RandomLoss(r)},
	} {
		var skipped func(bool, int) bool
		if tc.skip[0] != nil {
			skipped = tc.skip.Skipped
		}
		segs := Cut(cs, tc.split, skipped)
		var got [2][]byte
		for _, s := range segs {
			d := 0
			if s.ToServer {
				d = 1
			}
			if s.Off != len(got[d]) {
				t.Fatalf("%s: segment at %d, want %d", tc.name, s.Off, len(got[d]))
			}
			if s.Data == nil {
				if skipped == nil || !skipped(s.ToServer, s.Off) || s.Skip == 0 {
					t.Fatalf("%s: unexpected skip %+v", tc.name, s)
				}
				got[d] = append(got[d], bytes.Repeat([]byte{cs[s.K].Data[0]}, s.Skip)...)
				continue
			}
			if skipped != nil && skipped(s.ToServer, s.Off) {
				t.Fatalf("%s: lost byte %d fed", tc.name, s.Off)
			}
			got[d] = append(got[d], s.Data...)
		}
		toServer, toClient := Streams(cs)
		if !bytes.Equal(got[1], toServer.Data) || !bytes.Equal(got[0], toClient.Data) {
			t.Errorf("%s: segments do not add up to the recording", tc.name)
		}
	}
	if n := len(Cut(cs, Whole, limit.Skipped)); n != 5 {
		t.Errorf("capture limit 100: %d segments, want 5", n)
	}
	if got := Pieces(func() int { return 300 })(0, cs[0]); !slices.Equal(got, []int{300, 300, 100}) {
		t.Errorf("Pieces = %v", got)
	}
}

func TestSegment(t *testing.T) {
	s := Seg{ToServer: true, K: 3, Off: 0x200, Data: []byte("x")}
	for role, dir := range map[conn.Role]conn.Direction{conn.RoleClient: conn.Egress, conn.RoleServer: conn.Ingress, conn.RoleUnknown: conn.Ingress} {
		cs := s.Segment(role)
		if cs.Dir != dir || cs.Offset != 0x200 || cs.Seq != 0x100 || cs.Start != ChunkStart(3) || cs.End != ChunkEnd(3) || cs.TID != ChunkTID(3) {
			t.Errorf("%v: %+v", role, cs)
		}
	}
}

func TestOps(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100)
	prog := AppendOps([]byte{1}, data, conn.Ingress)
	prog = append(prog, 2<<2|2) // a skip of 15
	var got []byte
	var skip uint64
	Ops(prog, 37, func(s *conn.Segment) {
		if s.Skip != 0 {
			skip = s.Skip
			return
		}
		if s.Dir != conn.Ingress || s.Offset != uint64(len(got)) {
			t.Fatalf("segment %+v", s)
		}
		got = append(got, s.Data...)
	})
	if !bytes.Equal(got, data) || skip != 15*37 {
		t.Fatalf("Ops gave %d bytes and a skip of %d", len(got), skip)
	}
}

// TestProxy records an echo server through the proxy.
func TestProxy(t *testing.T) {
	upstream := serve(t, func(c net.Conn) { io.Copy(c, c) })
	conns, err := Record(upstream, func(addr string) error {
		for _, msg := range []string{"one", "two"} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(c, msg); err != nil {
				return err
			}
			c.(*net.TCPConn).CloseWrite()
			if b, err := io.ReadAll(c); err != nil || string(b) != msg {
				return errors.Join(err, errors.New("echo: "+string(b)))
			}
			c.Close()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 {
		t.Fatalf("%d connections, want 2", len(conns))
	}
	for i, msg := range []string{"one", "two"} {
		toServer, toClient := Streams(conns[i])
		if string(toServer.Data) != msg || string(toClient.Data) != msg || !conns[i][0].ToServer {
			t.Errorf("connection %d: %q", i, Format(conns[i]))
		}
	}
}

func TestRecordOneCounts(t *testing.T) {
	upstream := serve(t, func(net.Conn) {})
	if _, err := RecordOne(upstream, func(string) error { return nil }); err == nil {
		t.Error("RecordOne of a client that made no connection did not fail")
	}
}

// serve runs handle on every connection to a new loopback listener, then
// closes the connection; the listener closes when the test ends.
func serve(t *testing.T, handle func(net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { handle(c); c.Close() }()
		}
	}()
	return l.Addr().String()
}
