package recording

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Chunk is one read the recording proxy made.
type Chunk struct {
	ToServer bool   // the client sent it (toward the server)
	Data     []byte // what the read returned
}

// Parse reads a recording in the .rec format. The chunks' Data share
// raw's memory.
func Parse(raw []byte) ([]Chunk, error) {
	var cs []Chunk
	for len(raw) > 0 {
		nl := bytes.IndexByte(raw, '\n')
		if nl < 3 || (raw[0] != '>' && raw[0] != '<') || raw[1] != ' ' {
			return nil, fmt.Errorf("bad record header %q", raw[:min(len(raw), 20)])
		}
		n, err := strconv.Atoi(string(raw[2:nl]))
		if err != nil || n < 0 || nl+1+n+1 > len(raw) || raw[nl+1+n] != '\n' {
			return nil, fmt.Errorf("bad record length %q", raw[:nl])
		}
		cs = append(cs, Chunk{raw[0] == '>', raw[nl+1 : nl+1+n]})
		raw = raw[nl+1+n+1:]
	}
	return cs, nil
}

// Format writes chunks in the .rec format.
func Format(cs []Chunk) []byte {
	var out bytes.Buffer
	for _, c := range cs {
		d := '<'
		if c.ToServer {
			d = '>'
		}
		fmt.Fprintf(&out, "%c %d\n", d, len(c.Data))
		out.Write(c.Data)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// Load reads testdata/NAME.rec, failing t if it cannot.
func Load(t testing.TB, name string) []Chunk {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+".rec"))
	if err != nil {
		t.Fatal(err)
	}
	cs, err := Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cs
}

// Size is the number of bytes in a recording, both directions.
func Size(cs []Chunk) int {
	n := 0
	for _, c := range cs {
		n += len(c.Data)
	}
	return n
}

// Stream is one direction of a recording, with the chunk each byte came in.
type Stream struct {
	Data   []byte
	Starts []int // offset of each of its chunks
	Index  []int // recording index of each of its chunks
}

// ChunkAt is the recording index of the chunk that carried byte off.
func (s *Stream) ChunkAt(off int) int {
	i := 0
	for i+1 < len(s.Starts) && s.Starts[i+1] <= off {
		i++
	}
	return s.Index[i]
}

// Streams splits a recording into its two directions.
func Streams(cs []Chunk) (toServer, toClient Stream) {
	for k, c := range cs {
		s := &toClient
		if c.ToServer {
			s = &toServer
		}
		s.Starts = append(s.Starts, len(s.Data))
		s.Index = append(s.Index, k)
		s.Data = append(s.Data, c.Data...)
	}
	return toServer, toClient
}

// Benchmark replays each named recording (testdata/NAME.rec), cut as its
// reads delivered it, through replay once per iteration, reporting the
// recordings' bytes as the bytes processed.
func Benchmark(b *testing.B, names []string, replay func(segs []Seg)) {
	var all [][]Seg
	n := 0
	for _, name := range names {
		cs := Load(b, name)
		all = append(all, Cut(cs, Whole, nil))
		n += Size(cs)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, segs := range all {
			replay(segs)
		}
	}
}
