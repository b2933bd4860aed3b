// Command grpcsrv is the grpc-go server the e2e tests trace, over h2c. It
// listens on 127.0.0.1 on a free port and prints the port number alone on
// the first line of stdout. The service, described by hand (no protoc),
// is weft.e2e.Echo with google.protobuf wrapper messages:
//
//	Say, Say00 ... Say49  unary, StringValue -> StringValue: echoes the
//	                      request; "code:N" fails with status N;
//	                      "sleep:MS" answers after MS milliseconds
//	Count                 server streaming, Int32Value -> StringValue: that
//	                      many messages, 20 ms apart
//
// The numbered Say methods let a test tell 50 concurrent calls apart by
// span name alone.
//
//	Load000 ... Load127   unary, StringValue -> StringValue: with
//	                      WEFT_E2E_DOWN=host:port set, first calls the same
//	                      method there (one shared connection), then echoes
//	                      (a front service calling a back one)
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func say(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.StringValue)
	if err := dec(in); err != nil {
		return nil, err
	}
	for _, part := range strings.Split(in.Value, " ") {
		if ms, ok := strings.CutPrefix(part, "sleep:"); ok {
			n, _ := strconv.Atoi(ms)
			time.Sleep(time.Duration(n) * time.Millisecond)
		}
	}
	for _, part := range strings.Split(in.Value, " ") {
		if c, ok := strings.CutPrefix(part, "code:"); ok {
			n, _ := strconv.Atoi(c)
			if n != 0 {
				return nil, status.Errorf(codes.Code(n), "asked for code %d", n)
			}
		}
	}
	return wrapperspb.String(in.Value), nil
}

func count(_ any, ss grpc.ServerStream) error {
	in := new(wrapperspb.Int32Value)
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	for i := range in.Value {
		if i > 0 {
			time.Sleep(20 * time.Millisecond)
		}
		if err := ss.SendMsg(wrapperspb.String(fmt.Sprintf("item %d", i))); err != nil {
			return err
		}
	}
	return nil
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	desc := grpc.ServiceDesc{
		ServiceName: "weft.e2e.Echo",
		HandlerType: (*any)(nil),
		Methods:     []grpc.MethodDesc{{MethodName: "Say", Handler: say}},
		Streams:     []grpc.StreamDesc{{StreamName: "Count", Handler: count, ServerStreams: true}},
	}
	for i := range 50 {
		desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: fmt.Sprintf("Say%02d", i), Handler: say})
	}
	var down *grpc.ClientConn
	if addr := os.Getenv("WEFT_E2E_DOWN"); addr != "" {
		var err error
		if down, err = grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			log.Fatal(err)
		}
	}
	for i := range 128 {
		method := fmt.Sprintf("Load%03d", i)
		desc.Methods = append(desc.Methods, grpc.MethodDesc{MethodName: method, Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			if down != nil {
				if err := down.Invoke(ctx, "/weft.e2e.Echo/"+method, in, new(wrapperspb.StringValue)); err != nil {
					return nil, err
				}
			}
			return in, nil
		}})
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&desc, struct{}{})
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	log.Fatal(s.Serve(ln))
}
