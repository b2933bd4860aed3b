package http2

import (
	"bytes"
	"errors"
	"io"
	"sort"
	"strconv"
	"strings"
	"testing"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/recording"
)

// oframe is one frame as the oracle read it: [start, end) in its
// direction's stream, and for DATA the payload range a capture may lose
// without cost.
type oframe struct {
	typ          xhttp2.FrameType
	stream       uint32
	start, end   int
	body0, body1 int // DATA content; empty for other frames
	headers      bool
}

// oex is one exchange as the oracle frames it: what the parser must emit,
// with where its request began and where its end arrived.
type oex struct {
	http     protocols.HTTP
	reqStart int // offset of the request's HEADERS frame, to the server
	endK     int // recording chunk that carried the stream's last byte
}

// counter counts the bytes a Framer has read.
type counter struct {
	r io.Reader
	n int
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// oracleFrames reads one direction with x/net's Framer and HPACK decoder,
// independently of the parser under test.
func oracleFrames(t *testing.T, b []byte, preface bool, each func(f xhttp2.Frame, start, end int)) []oframe {
	t.Helper()
	c := &counter{r: bytes.NewReader(b)}
	if preface {
		if !bytes.HasPrefix(b, []byte(Preface)) {
			t.Fatalf("oracle: client stream does not start with the preface")
		}
		io.CopyN(io.Discard, c, int64(len(Preface)))
	}
	fr := xhttp2.NewFramer(nil, c)
	fr.SetMaxReadFrameSize(1<<24 - 1)
	dec := hpack.NewDecoder(DefaultHeaderTableSize, nil)
	dec.SetAllowedMaxDynamicTableSize(1 << 20)
	fr.ReadMetaHeaders = dec
	var out []oframe
	for {
		start := c.n
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("oracle: frame at %d: %v", start, err)
		}
		h := f.Header()
		of := oframe{typ: h.Type, stream: h.StreamID, start: start, end: c.n}
		switch f := f.(type) {
		case *xhttp2.DataFrame:
			of.body1 = c.n - (int(h.Length) - len(f.Data()) - 1) // minus padding
			of.body0 = of.body1 - len(f.Data())
			if h.Flags&xhttp2.FlagDataPadded == 0 {
				of.body1 = c.n
				of.body0 = c.n - len(f.Data())
			}
		case *xhttp2.MetaHeadersFrame:
			of.headers = true
		}
		out = append(out, of)
		each(f, start, c.n)
	}
}

type ostream struct {
	x                oex
	req, resp, ended bool
	endOff           int  // offset just past the stream's last frame
	endToServer      bool // which direction that frame went
	respBody         int64
}

// oracle frames a recording's exchanges: one per stream whose request
// was seen, in the order of their ends.
func oracle(t *testing.T, cs []recording.Chunk) (exs []oex, frames [2][]oframe) {
	t.Helper()
	toServer, toClient := recording.Streams(cs)
	byID := map[uint32]*ostream{}
	var order []uint32
	get := func(id uint32) *ostream {
		s := byID[id]
		if s == nil {
			s = &ostream{x: oex{http: protocols.HTTP{Version: "2", GRPCStatus: -1, StreamID: id}}}
			byID[id] = s
			order = append(order, id)
		}
		return s
	}
	end := func(s *ostream, toSrv bool, off int) {
		if !s.ended {
			s.ended, s.endOff, s.endToServer = true, off, toSrv
		}
	}
	frames[1] = oracleFrames(t, toServer.Data, true, func(f xhttp2.Frame, start, stop int) {
		id := f.Header().StreamID
		if id == 0 {
			return
		}
		s := get(id)
		switch f := f.(type) {
		case *xhttp2.MetaHeadersFrame:
			if s.req {
				return // trailers
			}
			s.req = true
			h := &s.x.http
			s.x.reqStart = start
			h.Method = f.PseudoValue("method")
			h.Path, _, _ = strings.Cut(f.PseudoValue("path"), "?")
			h.Host = f.PseudoValue("authority")
			h.Scheme = f.PseudoValue("scheme")
			for _, hf := range f.RegularFields() {
				switch hf.Name {
				case "user-agent":
					h.UserAgent = hf.Value
				case "traceparent":
					h.TraceParent = hf.Value
				case "tracestate":
					h.TraceState = hf.Value
				case "content-type":
					h.GRPC = strings.HasPrefix(hf.Value, "application/grpc")
				}
			}
		case *xhttp2.DataFrame:
			s.x.http.RequestBodySize += int64(len(f.Data()))
		case *xhttp2.RSTStreamFrame:
			end(s, true, stop)
		}
	})
	frames[0] = oracleFrames(t, toClient.Data, false, func(f xhttp2.Frame, start, stop int) {
		id := f.Header().StreamID
		if id == 0 {
			return
		}
		s := get(id)
		switch f := f.(type) {
		case *xhttp2.MetaHeadersFrame:
			h := &s.x.http
			if st := f.PseudoValue("status"); st != "" {
				n, _ := strconv.Atoi(st)
				if n < 200 {
					return
				}
				h.Status = n
				s.resp = true
			}
			for _, hf := range f.RegularFields() {
				if hf.Name == "grpc-status" {
					h.GRPCStatus, _ = strconv.Atoi(hf.Value)
				}
			}
			if f.StreamEnded() {
				end(s, false, stop)
			}
		case *xhttp2.DataFrame:
			s.respBody += int64(len(f.Data()))
			if f.StreamEnded() {
				end(s, false, stop)
			}
		case *xhttp2.RSTStreamFrame:
			end(s, false, stop)
		}
	})
	for _, id := range order {
		s := byID[id]
		if !s.req || !s.ended {
			t.Fatalf("oracle: stream %d: request seen %v, ended %v", id, s.req, s.ended)
		}
		s.x.http.ResponseBodySize = s.respBody
		// The parser emits a stream when its end arrives.
		if s.endToServer {
			s.x.endK = toServer.ChunkAt(s.endOff - 1)
		} else {
			s.x.endK = toClient.ChunkAt(s.endOff - 1)
		}
		exs = append(exs, s.x)
	}
	sort.SliceStable(exs, func(i, j int) bool { return exs[i].endK < exs[j].endK })
	return exs, frames
}
