package load

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// GRPCMethod is the unary method GRPCServe answers and GRPC calls.
const GRPCMethod = "/weft.bench.Echo/Say"

// GRPCServe serves GRPCMethod (echo a StringValue) on ln over h2c, the
// service described by hand as grpc-go allows (no protoc).
func GRPCServe(ln net.Listener) error {
	s := grpc.NewServer()
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "weft.bench.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Say", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			in := new(wrapperspb.StringValue)
			if err := dec(in); err != nil {
				return nil, err
			}
			return in, nil
		}}},
	}, struct{}{})
	return s.Serve(ln)
}

// GRPC calls GRPCMethod on addr from cfg.Conns goroutines over one
// connection (grpc-go multiplexes them, as clients usually do).
func GRPC(addr string, cfg Config) (Result, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return Result{}, fmt.Errorf("grpc client %s: %w", addr, err)
	}
	defer cc.Close()
	in := wrapperspb.String("ping")
	call := func(int) error {
		ctx, cancel := ctxTimeout()
		defer cancel()
		out := new(wrapperspb.StringValue)
		return cc.Invoke(ctx, GRPCMethod, in, out)
	}
	if err := call(0); err != nil { // connect before the clock starts
		return Result{}, fmt.Errorf("grpc %s: %w", addr, err)
	}
	return run(cfg, cfg.Conns, call)
}
