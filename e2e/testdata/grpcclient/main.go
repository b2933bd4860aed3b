// Command grpcclient makes gRPC calls to grpcsrv, all on ONE h2c
// connection, and prints one JSON line per call on stdout, in the order
// the arguments give them:
//
//	say MSG            unary weft.e2e.Echo/Say
//	saytp MSG TP       the same with traceparent TP in the metadata
//	count N            server-streaming weft.e2e.Echo/Count of N messages
//	concurrent N MSG   N unary calls at once, call i to Say<i> (two
//	                   digits) with MSG and " code:<i mod 17>"
//	load N C           N unary calls from C workers at once, call i to
//	                   Load<i mod 128> (three digits); fails unless all
//	                   succeed, prints one line (method "load", messages N)
//
// Each line says the method, the status code the client got, when the
// call began and ended (ns since the epoch) and the connection's local
// port.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

type result struct {
	Method    string `json:"method"`
	Code      int    `json:"code"`
	Messages  int    `json:"messages"`
	StartNs   int64  `json:"start_ns"`
	EndNs     int64  `json:"end_ns"`
	LocalPort int    `json:"local_port"`
}

func main() {
	addr := flag.String("addr", "", "server host:port")
	flag.Parse()
	var dials atomic.Int32
	var localPort atomic.Int32
	cc, err := grpc.NewClient(*addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("weft-e2e-grpcclient/1"),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			dials.Add(1)
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", a)
			if err == nil {
				localPort.Store(int32(c.LocalAddr().(*net.TCPAddr).Port))
			}
			return c, err
		}))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	args := flag.Args()
	var out []result
	call := func(ctx context.Context, method, msg string) result {
		r := result{Method: method, StartNs: time.Now().UnixNano()}
		err := cc.Invoke(ctx, method, wrapperspb.String(msg), new(wrapperspb.StringValue))
		r.EndNs = time.Now().UnixNano()
		r.Code = int(status.Code(err))
		return r
	}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "say":
			out = append(out, call(context.Background(), "/weft.e2e.Echo/Say", args[i+1]))
			i++
		case "saytp":
			ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", args[i+2])
			out = append(out, call(ctx, "/weft.e2e.Echo/Say", args[i+1]))
			i += 2
		case "count":
			n, _ := strconv.Atoi(args[i+1])
			out = append(out, stream(cc, int32(n)))
			i++
		case "concurrent":
			n, _ := strconv.Atoi(args[i+1])
			msg := args[i+2]
			res := make([]result, n)
			var ready, done sync.WaitGroup
			ready.Add(n)
			start := make(chan struct{})
			for k := range n {
				done.Go(func() {
					ready.Done()
					<-start
					res[k] = call(context.Background(), fmt.Sprintf("/weft.e2e.Echo/Say%02d", k), fmt.Sprintf("%s code:%d", msg, k%17))
				})
			}
			ready.Wait()
			close(start)
			done.Wait()
			out = append(out, res...)
			i += 2
		case "load":
			n, _ := strconv.Atoi(args[i+1])
			c, _ := strconv.Atoi(args[i+2])
			var next, failed atomic.Int64
			var wg sync.WaitGroup
			for range c {
				wg.Go(func() {
					for k := next.Add(1) - 1; k < int64(n); k = next.Add(1) - 1 {
						if r := call(context.Background(), fmt.Sprintf("/weft.e2e.Echo/Load%03d", k%128), "load"); r.Code != 0 {
							failed.Add(1)
						}
					}
				})
			}
			wg.Wait()
			if f := failed.Load(); f > 0 {
				log.Fatalf("%d of %d load calls failed", f, n)
			}
			out = append(out, result{Method: "load", Messages: n})
			i += 2
		default:
			log.Fatalf("unknown operation %q", args[i])
		}
	}
	if n := dials.Load(); n != 1 {
		log.Fatalf("made %d connections, want 1", n)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, r := range out {
		r.LocalPort = int(localPort.Load())
		enc.Encode(r)
	}
}

// stream makes one server-streaming Count call and reads it to the end.
func stream(cc *grpc.ClientConn, n int32) result {
	r := result{Method: "/weft.e2e.Echo/Count", StartNs: time.Now().UnixNano()}
	desc := &grpc.StreamDesc{StreamName: "Count", ServerStreams: true}
	st, err := cc.NewStream(context.Background(), desc, r.Method)
	if err == nil {
		err = st.SendMsg(wrapperspb.Int32(n))
	}
	if err == nil {
		err = st.CloseSend()
	}
	for err == nil {
		if err = st.RecvMsg(new(wrapperspb.StringValue)); err == nil {
			r.Messages++
		}
	}
	if err == io.EOF {
		err = nil
	}
	r.EndNs = time.Now().UnixNano()
	r.Code = int(status.Code(err))
	return r
}
