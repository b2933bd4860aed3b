package bpf

import (
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// TestHashMapsListed: every hash map of the C side is counted for the
// metrics, under its C name. Unprivileged.
func TestHashMapsListed(t *testing.T) {
	spec, err := loadWeft()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for name, m := range spec.Maps {
		switch m.Type {
		case ebpf.Hash, ebpf.LRUHash, ebpf.PerCPUHash, ebpf.LRUCPUHash:
			want = append(want, name)
		}
	}
	var got []string
	for _, nm := range (&Tracer{}).hashMaps() {
		got = append(got, nm.name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("maps counted %q, the C side's hash maps are %q", got, want)
	}
}

// TestCountEntries counts a real LRU hash map: empty, partly filled, and
// past its capacity (the LRU evicted: the count stays at most the
// capacity); the counter caches for its interval.
func TestCountEntries(t *testing.T) {
	requireKernel(t)
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 8, ValueSize: 4, MaxEntries: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	put := func(from, to uint64) {
		for k := from; k < to; k++ {
			var key [8]byte
			binary.LittleEndian.PutUint64(key[:], k)
			if err := m.Put(key[:], uint32(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() int {
		n, err := countEntries(m)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 0 {
		t.Fatalf("empty map: %d entries", n)
	}
	put(0, 37)
	if n := count(); n != 37 {
		t.Fatalf("37 keys put: counted %d", n)
	}
	put(37, 2000)
	if n := count(); n == 0 || n > 256 {
		t.Fatalf("2000 keys put in a 256-entry LRU map: counted %d, want 1..256", n)
	}

	now := time.Unix(1000, 0)
	c := newMapCounter([]namedMap{{"m", m}}, 10*time.Second)
	c.now = func() time.Time { return now }
	fill := func() MapFill {
		f, err := c.Fill()
		if err != nil || len(f) != 1 {
			t.Fatalf("Fill: %v %v", f, err)
		}
		return f[0]
	}
	first := fill()
	if first.Name != "m" || first.MaxEntries != 256 || first.Entries != int64(count()) {
		t.Fatalf("Fill: %+v, want m with %d of 256", first, count())
	}
	for k := uint64(0); k < 2000; k++ {
		var key [8]byte
		binary.LittleEndian.PutUint64(key[:], k)
		m.Delete(key[:])
	}
	now = now.Add(9 * time.Second)
	if f := fill(); f.Entries != first.Entries {
		t.Fatalf("counted again within the interval: %+v", f)
	}
	now = now.Add(time.Second)
	if f := fill(); f.Entries != 0 {
		t.Fatalf("after the interval, an emptied map: %+v", f)
	}
}

// TestMapFillConns: while the test holds a TCP connection open, the
// tracer's conns map is not empty.
func TestMapFillConns(t *testing.T) {
	requireKernel(t)
	tr, err := Load(Config{SelfPID: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	io.ReadFull(c, make([]byte, 4))
	fill, err := tr.MapFill()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fill {
		if f.MaxEntries <= 0 || f.Entries > f.MaxEntries {
			t.Errorf("map %s: %d of %d entries", f.Name, f.Entries, f.MaxEntries)
		}
		if f.Name == "conns" && f.Entries < 2 {
			t.Errorf("conns: %d entries while a connection is open (both ends traced), want at least 2", f.Entries)
		}
	}
	t.Logf("%+v", fill)
}
