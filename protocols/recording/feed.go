package recording

import (
	"math/rand/v2"

	"github.com/weftrace/weft/conn"
)

// Synthetic timing and sequence numbers for recorded chunks: chunk k ran
// from ChunkStart(k) to ChunkEnd(k) on thread ChunkTID(k). The client's
// sequence space wraps early to exercise uint32 arithmetic.
func ChunkStart(k int) int64 { return 1_000_000 + int64(k)*1000 }

// ChunkEnd is when chunk k's read returned.
func ChunkEnd(k int) int64 { return ChunkStart(k) + 400 }

// ChunkTID is the thread that made chunk k's read.
func ChunkTID(k int) uint32 { return 500 + uint32(k) }

// Initial sequence numbers of the two directions, and when Feed's callers
// close their parsers.
const (
	ISNToServer = uint32(0xFFFF_FF00)
	ISNToClient = uint32(12345)
	CloseTS     = int64(999_999_999)
)

// Seg is a segment with its direction from the client's point of view.
type Seg struct {
	ToServer bool
	K        int    // recording chunk it came from
	Off      int    // offset in its direction's stream
	Data     []byte // nil for a skip
	Skip     int
}

// Segment is s as the side of the connection with the given role sees it.
// Requests go client to server: egress for a client, ingress for a
// server. An unknown role sees it as the server does.
func (s Seg) Segment(role conn.Role) conn.Segment {
	dir := conn.Ingress
	if s.ToServer == (role == conn.RoleClient) {
		dir = conn.Egress
	}
	isn := ISNToClient
	if s.ToServer {
		isn = ISNToServer
	}
	return conn.Segment{
		Dir:    dir,
		Offset: uint64(s.Off),
		Data:   s.Data,
		Skip:   uint64(s.Skip),
		Start:  ChunkStart(s.K),
		End:    ChunkEnd(s.K),
		Seq:    isn + uint32(s.Off),
		TID:    ChunkTID(s.K),
	}
}

// Feed hands segs, as role sees them, to segment (a parser's Segment).
func Feed(role conn.Role, segs []Seg, segment func(*conn.Segment)) {
	for _, s := range segs {
		cs := s.Segment(role)
		segment(&cs)
	}
}

// A Split returns the lengths to cut chunk k, c, into.
type Split func(k int, c Chunk) []int

// Cut turns a recording into segments. split says how to cut each chunk;
// skipped(toServer, off), if not nil, says whether a byte is lost: runs
// of lost bytes become one skip segment.
func Cut(cs []Chunk, split Split, skipped func(toServer bool, off int) bool) []Seg {
	var out []Seg
	var offs [2]int
	for k, c := range cs {
		d := 0
		if c.ToServer {
			d = 1
		}
		b := c.Data
		for _, n := range split(k, c) {
			part := b[:n]
			b = b[n:]
			for len(part) > 0 {
				off := offs[d]
				sk := skipped != nil && skipped(c.ToServer, off)
				i := 1
				for i < len(part) && (skipped != nil && skipped(c.ToServer, off+i)) == sk {
					i++
				}
				s := Seg{ToServer: c.ToServer, K: k, Off: off}
				if sk {
					s.Skip = i
				} else {
					s.Data = part[:i]
				}
				out = append(out, s)
				offs[d] += i
				part = part[i:]
			}
		}
	}
	return out
}

// Whole keeps each chunk in one piece, as it was read.
func Whole(_ int, c Chunk) []int { return []int{len(c.Data)} }

// Bytewise cuts each chunk into single bytes.
func Bytewise(_ int, c Chunk) []int {
	n := make([]int, len(c.Data))
	for i := range n {
		n[i] = 1
	}
	return n
}

// Pieces cuts each chunk into pieces of size() bytes (the last one
// shorter).
func Pieces(size func() int) Split {
	return func(_ int, c Chunk) []int {
		var ns []int
		for left := len(c.Data); left > 0; {
			n := min(left, size())
			ns = append(ns, n)
			left -= n
		}
		return ns
	}
}

// RandomSplit cuts each chunk into random pieces, mostly small, some of
// up to 3000 bytes.
func RandomSplit(r *rand.Rand) Split {
	return Pieces(func() int { return 1 + r.IntN(1+r.IntN(3000)) })
}

// SplitAt cuts chunk k in two at offset at, and keeps the others whole.
func SplitAt(k, at int) Split {
	return func(j int, c Chunk) []int {
		if j != k {
			return []int{len(c.Data)}
		}
		return []int{at, len(c.Data) - at}
	}
}

// Mask marks bytes of a recording per direction ([0] toward the client,
// [1] toward the server), by their offset in that direction's stream.
type Mask [2][]bool

// NewMask is an empty mask the size of the recording.
func NewMask(cs []Chunk) Mask {
	toServer, toClient := Streams(cs)
	return Mask{make([]bool, len(toClient.Data)), make([]bool, len(toServer.Data))}
}

// Skipped says whether m marks byte off of a direction: m as Cut's
// skipped.
func (m Mask) Skipped(toServer bool, off int) bool {
	if toServer {
		return m[1][off]
	}
	return m[0][off]
}

// And marks the bytes both masks mark.
func (m Mask) And(o Mask) Mask {
	var out Mask
	for d := range m {
		out[d] = make([]bool, len(m[d]))
		for i := range m[d] {
			out[d][i] = m[d][i] && o[d][i]
		}
	}
	return out
}

// CaptureLimit marks the bytes past the first limit of each read, as a
// per-syscall capture limit loses them.
func CaptureLimit(cs []Chunk, limit int) Mask {
	m := NewMask(cs)
	var offs [2]int
	for _, c := range cs {
		d := 0
		if c.ToServer {
			d = 1
		}
		for i := limit; i < len(c.Data); i++ {
			m[d][offs[d]+i] = true
		}
		offs[d] += len(c.Data)
	}
	return m
}

// RandomLoss marks random runs of the bytes m marks: about one run start
// for every 50 bytes of a direction, each run up to 4000 bytes and
// stopping at the first byte m does not mark.
func (m Mask) RandomLoss(r *rand.Rand) Mask {
	lost := Mask{make([]bool, len(m[0])), make([]bool, len(m[1]))}
	for d := range lost {
		n := len(lost[d])
		for range n / 50 {
			o := r.IntN(n)
			for k := o; k < min(n, o+r.IntN(4000)) && m[d][k]; k++ {
				lost[d][k] = true
			}
		}
	}
	return lost
}
