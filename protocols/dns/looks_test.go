package dns

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLooksLike(t *testing.T) {
	q := msg(t, 1, false, "example.test", dnsmessage.TypeA, 0)
	r := msg(t, 1, true, "example.test", dnsmessage.TypeA, dnsmessage.RCodeNameError)
	zBit := append([]byte(nil), q...)
	zBit[3] |= 0x40
	notify := append([]byte(nil), q...)
	notify[2] |= 4 << 3
	twoQ := append([]byte(nil), q...)
	twoQ[5] = 2
	withAnswer := append([]byte(nil), q...)
	withAnswer[7] = 1
	chaos := msg(t, 1, false, "version.bind", dnsmessage.TypeTXT, 0)
	chaos[len(chaos)-1] = 3
	badClass := append([]byte(nil), q...)
	badClass[len(badClass)-1] = 9
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"query", q, true},
		{"response", r, true},
		{"chaos class", chaos, true},
		{"question cut short", q[:len(q)-1], false},
		{"header only", q[:headerLen], false},
		{"reserved Z bit", zBit, false},
		{"NOTIFY opcode", notify, false},
		{"two questions", twoQ, false},
		{"query with an answer", withAnswer, false},
		{"unknown class", badClass, false},
		{"HTTP request", []byte("GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"), false},
		// TLS 1.2 ClientHello record whose handshake length puts 0x0001 where
		// QDCOUNT would be.
		{"TLS ClientHello", unhex(t, "16030102000100 01fc 0303 0000000000000000000000000000000000000000000000000000000000000000"), false},
		{"PostgreSQL startup", unhex(t, "00000008 04d2162f 00000000 00000000 0000"), false},
		{"QUIC initial", unhex(t, "c3 00000001 08 0102030405060708 00 00 4496 0000000000000000000000000000"), false},
		{"NTP request", append([]byte{0x23}, make([]byte, 47)...), false},
		{"empty", nil, false},
	} {
		if got := LooksLikeDatagram(tc.b); got != tc.want {
			t.Errorf("datagram %s: got %v, want %v", tc.name, got, tc.want)
		}
		if got := LooksLikeStream(framed(tc.b)); got != tc.want {
			t.Errorf("stream %s: got %v, want %v", tc.name, got, tc.want)
		}
		// Unframed, nothing is a DNS stream: not the other protocols' own
		// first bytes, nor a message without its length prefix.
		if LooksLikeStream(tc.b) {
			t.Errorf("stream of %s, unframed, matched", tc.name)
		}
	}
	// Servers read the prefix on its own: a lone prefix announcing a
	// query-sized message matches; nothing shorter, nor a prefix too
	// small or too large for a query.
	if !LooksLikeStream(framed(q)[:2]) {
		t.Error("a query's length prefix alone did not match")
	}
	for _, b := range [][]byte{{0}, {0, minMessage - 1}, {maxQueryLen >> 8, maxQueryLen&0xff + 1}, {0xff, 0xff}} {
		if LooksLikeStream(b) {
			t.Errorf("%x matched", b)
		}
	}
	// A stream's first segment may hold the message and more.
	if !LooksLikeStream(append(framed(q), framed(q)...)) {
		t.Error("two framed queries did not match")
	}
}

// TestLooksLikeRandom: random bytes practically never pass.
func TestLooksLikeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 64)
	hits := 0
	for range 200_000 {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if LooksLikeDatagram(b) || LooksLikeStream(b) {
			hits++
		}
	}
	if hits > 0 {
		t.Errorf("%d of 200000 random inputs looked like DNS", hits)
	}
}
