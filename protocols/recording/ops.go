package recording

import "github.com/weftrace/weft/conn"

// The fuzz tests' input is a program: byte 0 picks the role; then each op
// is a byte whose bit 0 picks the direction (0 egress, 1 ingress), bit 1
// a skip instead of data, and whose top 6 bits (times 7, plus one) give
// the length, taken from what follows for data.

// maxOp is the longest op.
const maxOp = 63*7 + 1

// Ops decodes the program in (byte 0 is the role, not read here) into
// segments and hands each to segment in turn. A skip op of length n skips
// n*skipUnit bytes.
func Ops(in []byte, skipUnit uint64, segment func(*conn.Segment)) {
	var off [2]uint64
	for i := 1; i < len(in); {
		op := in[i]
		i++
		n := int(op>>2)*7 + 1
		d := conn.Direction(op & 1)
		s := conn.Segment{Dir: d, Offset: off[d], Start: int64(i), End: int64(i) + 1}
		if op&2 != 0 {
			s.Skip = uint64(n) * skipUnit
		} else {
			n = min(n, len(in)-i)
			s.Data = in[i : i+n]
			i += n
		}
		off[d] += s.Len()
		segment(&s)
	}
}

// AppendOps encodes b as data ops of direction d (conn.Egress or
// conn.Ingress) and appends them to out.
func AppendOps(out, b []byte, d conn.Direction) []byte {
	for len(b) > 0 {
		n := min(len(b), maxOp)
		out = append(out, byte((n-1)/7)<<2|byte(d))
		n = (n-1)/7*7 + 1
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}
