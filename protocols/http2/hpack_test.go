package http2

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// hf is one decoded field; known is false for an unknown one.
type hf struct {
	name, value string
	known       bool
}

func (f hf) String() string {
	if !f.known {
		return "?"
	}
	return f.name + ": " + f.value
}

// recSink records every field a decoder reports.
type recSink struct{ got []hf }

func (r *recSink) field(name, value []byte, _ int) {
	r.got = append(r.got, hf{string(name), string(value), true})
}
func (r *recSink) unknown() { r.got = append(r.got, hf{}) }

func newDecoder(fromStart bool) *decoder {
	d := new(decoder)
	d.init(DefaultMaxTableSize, 1<<20, fromStart)
	return d
}

func decodeOurs(t testing.TB, d *decoder, block []byte) ([]hf, error) {
	t.Helper()
	var r recSink
	err := d.decode(block, &r)
	return r.got, err
}

func decodeXNet(d *hpack.Decoder, block []byte) ([]hf, error) {
	fs, err := d.DecodeFull(block)
	var out []hf
	for _, f := range fs {
		out = append(out, hf{f.Name, f.Value, true})
	}
	return out, err
}

func fields(fs ...string) []hf {
	var out []hf
	for _, f := range fs {
		n, v, _ := strings.Cut(f, ": ")
		out = append(out, hf{n, v, true})
	}
	return out
}

func sameFields(a, b []hf) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestRFC7541Examples decodes RFC 7541 C.4 (requests, Huffman) and C.6
// (responses, Huffman, a 256-byte table that evicts), checking the
// fields with both decoders and the table's size after each block.
func TestRFC7541Examples(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    uint32
		blocks []string
		want   [][]hf
		sizes  []uint64
	}{
		{"C.4", 4096, []string{
			"828684418cf1e3c2e5f23a6ba0ab90f4ff",
			"828684be5886a8eb10649cbf",
			"828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
		}, [][]hf{
			fields(":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com"),
			fields(":method: GET", ":scheme: http", ":path: /", ":authority: www.example.com", "cache-control: no-cache"),
			fields(":method: GET", ":scheme: https", ":path: /index.html", ":authority: www.example.com", "custom-key: custom-value"),
		}, []uint64{57, 110, 164}},
		{"C.6", 256, []string{
			"488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
			"4883640effc1c0bf",
			"88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
		}, [][]hf{
			fields(":status: 302", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"),
			fields(":status: 307", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:21 GMT", "location: https://www.example.com"),
			fields(":status: 200", "cache-control: private", "date: Mon, 21 Oct 2013 20:13:22 GMT", "location: https://www.example.com",
				"content-encoding: gzip", "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
		}, []uint64{222, 222, 215}},
	} {
		ours := newDecoder(true)
		ours.cur = tc.max
		ours.tab.setLimit(uint64(tc.max))
		xnet := hpack.NewDecoder(tc.max, nil)
		for i, h := range tc.blocks {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			x, err := decodeXNet(xnet, b)
			if err != nil || !sameFields(x, tc.want[i]) {
				t.Fatalf("%s block %d: x/net decodes %v (%v): the test vector is wrong", tc.name, i, x, err)
			}
			got, err := decodeOurs(t, ours, b)
			if err != nil || !sameFields(got, tc.want[i]) {
				t.Errorf("%s block %d: got %v (%v), want %v", tc.name, i, got, err, tc.want[i])
			}
			if ours.tab.size != tc.sizes[i] || !ours.synced {
				t.Errorf("%s block %d: table size %d synced %v, want %d synced", tc.name, i, ours.tab.size, ours.synced, tc.sizes[i])
			}
		}
	}
}

// randomFields makes a header list like real traffic: repeated names and
// values (indexed), changing values (inserted), long values (evicting),
// never-indexed ones.
func randomFields(r *rand.Rand) []hpack.HeaderField {
	names := []string{":method", ":path", ":authority", "content-type", "user-agent", "x-id", "traceparent", "cookie", "grpc-timeout"}
	var out []hpack.HeaderField
	for range 1 + r.IntN(8) {
		f := hpack.HeaderField{Name: names[r.IntN(len(names))]}
		switch r.IntN(4) {
		case 0:
			f.Value = "same"
		case 1:
			f.Value = fmt.Sprintf("v%d", r.IntN(20))
		case 2:
			f.Value = strings.Repeat(string(rune('a'+r.IntN(26))), r.IntN(600))
		default:
			f.Value = fmt.Sprintf("%x", r.Uint64())
		}
		if r.IntN(10) == 0 {
			f.Name = fmt.Sprintf("x-new-%d", r.IntN(1000))
		}
		f.Sensitive = r.IntN(12) == 0
		out = append(out, f)
	}
	return out
}

// encodeSequence encodes n random header lists with x/net's encoder,
// changing its table size now and then (with the size updates that
// causes), and returns the blocks and what each decodes to.
func encodeSequence(r *rand.Rand, n int) (blocks [][]byte, truth [][]hf) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(8192)
	xnet := hpack.NewDecoder(DefaultHeaderTableSize, nil)
	xnet.SetAllowedMaxDynamicTableSize(8192)
	for range n {
		if r.IntN(15) == 0 {
			enc.SetMaxDynamicTableSize([]uint32{0, 64, 256, 4096, 8192}[r.IntN(5)])
		}
		buf.Reset()
		for _, f := range randomFields(r) {
			enc.WriteField(f)
		}
		b := bytes.Clone(buf.Bytes())
		x, err := decodeXNet(xnet, b)
		if err != nil {
			panic(err)
		}
		blocks, truth = append(blocks, b), append(truth, x)
	}
	return blocks, truth
}

// TestDifferential decodes long random sequences with both decoders: all
// fields known and equal, the table never lost.
func TestDifferential(t *testing.T) {
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 7))
		blocks, truth := encodeSequence(r, 300)
		d := newDecoder(true)
		for i, b := range blocks {
			got, err := decodeOurs(t, d, b)
			if err != nil || !sameFields(got, truth[i]) {
				t.Fatalf("seed %d block %d: got %v (%v)\nwant %v", seed, i, got, err, truth[i])
			}
		}
		if !d.synced {
			t.Errorf("seed %d: decoder lost sync on a whole sequence", seed)
		}
	}
}

// TestDesyncNeverWrong starts decoding each random sequence part way
// through, as a capture that began mid-connection does: every field
// reported known equals the truth; the unknown ones are counted; once the
// decoder says it is synced again, everything decodes.
func TestDesyncNeverWrong(t *testing.T) {
	resynced := 0
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 9))
		blocks, truth := encodeSequence(r, 200)
		for _, from := range []int{1, 10, 50, 150} {
			d := newDecoder(false)
			for i := from; i < len(blocks); i++ {
				was := d.synced
				got, err := decodeOurs(t, d, blocks[i])
				if err != nil {
					t.Fatalf("seed %d from %d block %d: %v", seed, from, i, err)
				}
				if len(got) != len(truth[i]) {
					t.Fatalf("seed %d from %d block %d: %d fields, want %d", seed, from, i, len(got), len(truth[i]))
				}
				for j, f := range got {
					if f.known && f != truth[i][j] {
						t.Fatalf("seed %d from %d block %d field %d: got %v, truth %v", seed, from, i, j, f, truth[i][j])
					}
					if !f.known && was {
						t.Fatalf("seed %d from %d block %d field %d: unknown while synced", seed, from, i, j)
					}
				}
			}
			if d.synced {
				resynced++
			}
		}
	}
	if resynced == 0 {
		t.Error("no sequence ever proved its table whole again")
	}
}

// TestLoseKeepsGoing: a block lost in the middle of a synced sequence.
func TestLoseKeepsGoing(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	blocks, truth := encodeSequence(r, 200)
	d := newDecoder(true)
	unknown := 0
	for i, b := range blocks {
		if i == 20 {
			if !d.lose() {
				t.Fatal("lose on a synced decoder reported it was not synced")
			}
			continue
		}
		got, err := decodeOurs(t, d, b)
		if err != nil {
			t.Fatal(err)
		}
		for j, f := range got {
			if f.known && f != truth[i][j] {
				t.Fatalf("block %d field %d: got %v, truth %v", i, j, f, truth[i][j])
			}
			if !f.known {
				unknown++
			}
		}
	}
	if unknown == 0 {
		t.Error("losing a block cost nothing: the test proves nothing")
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		hex  string
	}{
		{"index 0", "80"},
		{"index past synced table", "be"},
		{"truncated integer", "ff"},
		{"integer too long", "ff8080808080808080808001"},
		{"string past block", "400a616263"},
		{"bad huffman padding", "4082ff00"},
		{"literal truncated", "41"},
	} {
		b, _ := hex.DecodeString(tc.hex)
		if _, err := decodeOurs(t, newDecoder(true), b); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}

// TestTableBounded: a peer agreeing on a table larger than weft keeps
// leaves the decoder unsynced, with references past what it kept unknown.
func TestTableBounded(t *testing.T) {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	enc.SetMaxDynamicTableSizeLimit(1 << 16)
	enc.SetMaxDynamicTableSize(1 << 16)
	d := new(decoder)
	d.init(1024, 1<<20, true)
	xnet := hpack.NewDecoder(DefaultHeaderTableSize, nil)
	xnet.SetAllowedMaxDynamicTableSize(1 << 16)
	for i := range 40 {
		buf.Reset()
		enc.WriteField(hpack.HeaderField{Name: "x-big", Value: strings.Repeat(fmt.Sprint(i%10), 100)})
		got, err := decodeOurs(t, d, buf.Bytes())
		truth, _ := decodeXNet(xnet, buf.Bytes())
		if err != nil || got[0].known && got[0] != truth[0] {
			t.Fatalf("block %d: %v (%v), truth %v", i, got, err, truth)
		}
		if d.tab.size > 1024 || len(d.tab.arena) > 2*1024 {
			t.Fatalf("table holds %d bytes in a %d-byte arena, cap 1024", d.tab.size, len(d.tab.arena))
		}
	}
	if d.synced {
		t.Error("synced with a table larger than the cap")
	}
}
