package detect

import (
	"bytes"
	"testing"

	xhttp2 "golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
	"github.com/weftrace/weft/protocols/http2"
)

// h2Conn builds an h2c exchange: the client's preface, SETTINGS and
// request; the server's SETTINGS and response.
func h2Conn(t *testing.T) (client, server []byte) {
	t.Helper()
	var c, s, hb bytes.Buffer
	c.WriteString(http2.Preface)
	cf, sf := xhttp2.NewFramer(&c, nil), xhttp2.NewFramer(&s, nil)
	cf.WriteSettings()
	sf.WriteSettings()
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":path", "/h2"}, {":authority", "h"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	cf.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	hb.Reset()
	hpack.NewEncoder(&hb).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	sf.WriteHeaders(xhttp2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	sf.WriteData(1, true, []byte("ok"))
	return c.Bytes(), s.Bytes()
}

// TestDetectHTTP2: a connection is HTTP/2 whichever side's first bytes
// come first, the client's preface or the server's SETTINGS.
func TestDetectHTTP2(t *testing.T) {
	client, server := h2Conn(t)
	for _, serverFirst := range []bool{false, true} {
		stats := new(Stats)
		c := newConv(conn.RoleServer, Options{Stats: stats})
		if serverFirst {
			c.send(conn.Egress, string(server), 0)
			c.send(conn.Ingress, string(client), 0)
		} else {
			c.send(conn.Ingress, string(client), 0)
			c.send(conn.Egress, string(server), 0)
		}
		c.h.Close(1)
		if len(c.got) != 1 || c.got[0].Protocol != protocols.HTTP2 || c.got[0].HTTP.Path != "/h2" || c.got[0].HTTP.Status != 200 {
			t.Fatalf("server first %v: got %+v", serverFirst, c.got)
		}
		if n := stats.Detected[protocols.HTTP2].Load(); n != 1 {
			t.Errorf("server first %v: detected %d HTTP/2 connections, want 1", serverFirst, n)
		}
	}
}
