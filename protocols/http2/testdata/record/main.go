// Command record captures the fixtures in ../: what real HTTP/2 clients
// (grpc-go, Go net/http, curl with nghttp2) and servers (grpc-go, Go
// net/http) send each other over one h2c TCP connection, through a
// loopback proxy that logs every read in the order it happened. Run it
// from the repository root, with curl (built with HTTP/2) installed:
//
//	go run ./protocols/http2/testdata/record -out protocols/http2/testdata
//
// The file format is described in ../README.md.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftrace/weft/protocols/recording"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func main() {
	out := flag.String("out", "protocols/http2/testdata", "directory for the .rec files")
	only := flag.String("only", "", "record only the scenario of this name")
	flag.Parse()
	if err := run(*out, *only); err != nil {
		log.Fatal(err)
	}
}

func run(out, only string) error {
	grpcAddr, stopGRPC, err := startGRPC()
	if err != nil {
		return fmt.Errorf("start grpc server: %w", err)
	}
	defer stopGRPC()
	h2Addr, stopH2, err := startH2C(nil)
	if err != nil {
		return fmt.Errorf("start h2c server: %w", err)
	}
	defer stopH2()
	// A server that announces a small HPACK table: its peer's encoder
	// must shrink to it with a dynamic table size update.
	smallAddr, stopSmall, err := startH2C(&http.HTTP2Config{MaxDecoderHeaderTableSize: 256, MaxEncoderHeaderTableSize: 512})
	if err != nil {
		return fmt.Errorf("start h2c server: %w", err)
	}
	defer stopSmall()

	scenarios := []struct {
		name     string
		upstream string
		client   func(addr string) error
	}{
		{"grpc-unary", grpcAddr, grpcUnary},
		{"grpc-stream", grpcAddr, grpcStream},
		{"grpc-concurrent", grpcAddr, grpcConcurrent},
		{"grpc-large", grpcAddr, grpcLarge},
		{"go-h2c", h2Addr, goClient},
		{"go-h2c-small-table", smallAddr, goClient},
		// curl 7.88.1 cannot reuse a prior-knowledge connection
		// (curl/curl#10634): one transfer per recording.
		{"curl-h2c", h2Addr, curl("-H", "traceparent: "+traceparent, "{}/hello?q=1")},
		{"curl-h2c-big", h2Addr, curl("{}/big")},
	}
	for _, sc := range scenarios {
		if only != "" && sc.name != only {
			continue
		}
		cs, err := recording.RecordOne(sc.upstream, sc.client)
		if err != nil {
			return fmt.Errorf("record %s: %w", sc.name, err)
		}
		rec := recording.Format(cs)
		if err := os.WriteFile(filepath.Join(out, sc.name+".rec"), rec, 0o644); err != nil {
			return err
		}
		log.Printf("%s: %d bytes", sc.name, len(rec))
	}
	return nil
}

// The gRPC service, described by hand (no protoc): weft.test.Echo with
// unary Say (echoes; a request "code:N" fails with status N), and
// server-streaming Count (one message per line of the request's count).
const (
	service    = "weft.test.Echo"
	methodSay  = "/" + service + "/Say"
	methodList = "/" + service + "/Count"
)

var echoDesc = grpc.ServiceDesc{
	ServiceName: service,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{MethodName: "Say", Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		var code int
		if _, err := fmt.Sscanf(in.Value, "code:%d", &code); err == nil {
			return nil, status.Errorf(codes.Code(code), "asked for %d", code)
		}
		return wrapperspb.String(in.Value), nil
	}}},
	Streams: []grpc.StreamDesc{{StreamName: "Count", ServerStreams: true, Handler: func(_ any, ss grpc.ServerStream) error {
		in := new(wrapperspb.Int32Value)
		if err := ss.RecvMsg(in); err != nil {
			return err
		}
		for i := range in.Value {
			if err := ss.SendMsg(wrapperspb.String(fmt.Sprintf("item %d", i))); err != nil {
				return err
			}
		}
		return nil
	}}},
}

func startGRPC() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer()
	s.RegisterService(&echoDesc, struct{}{})
	go s.Serve(l)
	return l.Addr().String(), s.Stop, nil
}

// dialGRPC connects a client; the proxy accepts one connection only.
func dialGRPC(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("weft-record/1"))
}

func say(ctx context.Context, cc *grpc.ClientConn, msg string) error {
	out := new(wrapperspb.StringValue)
	return cc.Invoke(ctx, methodSay, wrapperspb.String(msg), out)
}

// grpcUnary: OK with traceparent metadata, NOT_FOUND, INTERNAL, OK with a
// deadline (grpc-timeout), then an unknown method (UNIMPLEMENTED).
func grpcUnary(addr string) error {
	cc, err := dialGRPC(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", traceparent, "tracestate", "weft=1")
	if err := say(ctx, cc, "hello"); err != nil {
		return err
	}
	if err := say(context.Background(), cc, "code:5"); status.Code(err) != codes.NotFound {
		return fmt.Errorf("code:5 gave %v", err)
	}
	if err := say(context.Background(), cc, "code:13"); status.Code(err) != codes.Internal {
		return fmt.Errorf("code:13 gave %v", err)
	}
	dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := say(dctx, cc, "again"); err != nil {
		return err
	}
	err = cc.Invoke(context.Background(), "/"+service+"/Nope", wrapperspb.String("x"), new(wrapperspb.StringValue))
	if status.Code(err) != codes.Unimplemented {
		return fmt.Errorf("unknown method gave %v", err)
	}
	return nil
}

// grpcStream: a server-streaming call of 5 messages, then a unary one.
func grpcStream(addr string) error {
	cc, err := dialGRPC(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	st, err := cc.NewStream(context.Background(), &echoDesc.Streams[0], methodList)
	if err != nil {
		return err
	}
	if err := st.SendMsg(wrapperspb.Int32(5)); err != nil {
		return err
	}
	if err := st.CloseSend(); err != nil {
		return err
	}
	n := 0
	for {
		m := new(wrapperspb.StringValue)
		if err := st.RecvMsg(m); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		n++
	}
	if n != 5 {
		return fmt.Errorf("stream gave %d messages, want 5", n)
	}
	return say(context.Background(), cc, "after stream")
}

// grpcConcurrent: 50 unary calls at once on one connection.
func grpcConcurrent(addr string) error {
	cc, err := dialGRPC(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	// Connect first, so all 50 share the connection's first settings.
	if err := say(context.Background(), cc, "warm-up"); err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			msg := fmt.Sprintf("call %d", i)
			if i%10 == 9 {
				msg = "code:14"
			}
			err := say(context.Background(), cc, msg)
			if i%10 == 9 && status.Code(err) == codes.Unavailable {
				err = nil
			}
			errs[i] = err
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// grpcLarge: a 100 KiB request and response (several DATA frames each),
// then a small call.
func grpcLarge(addr string) error {
	cc, err := dialGRPC(addr)
	if err != nil {
		return err
	}
	defer cc.Close()
	if err := say(context.Background(), cc, strings.Repeat("0123456789abcdef", 100<<10/16)); err != nil {
		return err
	}
	return say(context.Background(), cc, "small")
}

// startH2C serves HTTP/2 with prior knowledge (and HTTP/1) with net/http.
func startH2C(cfg *http.HTTP2Config) (string, func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello\n")
	})
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "got %d bytes\n", n)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("0123456789abcdef"), 64<<10/16))
	})
	mux.HandleFunc("/trailers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body before trailers\n")
		w.Header().Set("X-Checksum", "42")
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: mux, Protocols: new(http.Protocols), HTTP2: cfg}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go srv.Serve(l)
	return l.Addr().String(), func() { srv.Shutdown(context.Background()) }, nil
}

// goClient: net/http over h2c: GET, 64 KiB POST, 404, trailers, HEAD.
func goClient(addr string) error {
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	base := "http://" + addr
	do := func(method, path string, body io.Reader, want int) error {
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			return err
		}
		req.Header.Set("traceparent", traceparent)
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || resp.StatusCode != want {
			return fmt.Errorf("%s %s: %s %d, want HTTP/2 %d", method, path, resp.Proto, resp.StatusCode, want)
		}
		return err
	}
	return errors.Join(
		do("GET", "/hello", nil, 200),
		do("POST", "/upload", bytes.NewReader(bytes.Repeat([]byte("x"), 64<<10)), 201),
		do("GET", "/missing?x=1", nil, 404),
		do("GET", "/trailers", nil, 200),
		do("HEAD", "/hello", nil, 200),
	)
}

// curl runs curl with HTTP/2 prior knowledge, "{}" replaced by the base URL.
func curl(args ...string) func(addr string) error {
	return func(addr string) error {
		a := []string{"-s", "-S", "--http2-prior-knowledge", "-A", "curl/7.88.1"}
		for _, s := range args {
			if strings.HasPrefix(s, "{}") {
				a = append(a, "-o", "/dev/null", "http://"+addr+s[2:])
				continue
			}
			a = append(a, s)
		}
		out, err := exec.Command("curl", a...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("curl %v: %w: %s", a, err, out)
		}
		return nil
	}
}
