// Command catalog is the demo shop's product catalog: a grpc-go server
// (plaintext HTTP/2) with a hand-written service descriptor and wrapperspb
// messages (shop.v1.Catalog, see package shop), reading products from
// PostgreSQL with pgx over the simple query protocol, literals in the SQL
// text, so weft's sanitised db.query.text shows. One GetProduct call in
// twenty is slow on purpose (300 ms, a "cache miss").
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftrace/weft/demo/internal/shop"
)

var (
	db       *pgxpool.Pool
	slowRate = 0.05
)

func listProducts(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.Int32Value)
	if err := dec(in); err != nil {
		return nil, err
	}
	limit := min(max(in.Value, 1), 50)
	rows, err := db.Query(ctx, fmt.Sprintf("SELECT id, name, price_cents FROM products WHERE stock > 0 ORDER BY id LIMIT %d", limit))
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "list products: %v", err)
	}
	products, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (shop.Product, error) {
		var p shop.Product
		return p, r.Scan(&p.ID, &p.Name, &p.PriceCents)
	})
	if err != nil {
		return nil, status.Errorf(codes.Internal, "list products: %v", err)
	}
	return jsonValue(products)
}

func getProduct(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
	in := new(wrapperspb.Int64Value)
	if err := dec(in); err != nil {
		return nil, err
	}
	if rand.Float64() < slowRate {
		time.Sleep(300 * time.Millisecond) // a cache miss, on purpose
	}
	var p shop.Product
	err := db.QueryRow(ctx, fmt.Sprintf("SELECT id, name, price_cents, stock FROM products WHERE id = %d", in.Value)).
		Scan(&p.ID, &p.Name, &p.PriceCents, &p.Stock)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, status.Errorf(codes.NotFound, "no product %d", in.Value)
	}
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "get product %d: %v", in.Value, err)
	}
	return jsonValue(p)
}

func jsonValue(v any) (*wrapperspb.StringValue, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encode: %v", err)
	}
	return wrapperspb.String(string(b)), nil
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "gRPC listen address")
	dsn := flag.String("db", "host=127.0.0.1 port=5432 user=postgres dbname=shop", "PostgreSQL connection string")
	flag.Float64Var(&slowRate, "slow", slowRate, "share of GetProduct calls that take 300 ms more")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	cfg, err := pgxpool.ParseConfig(*dsn)
	if err != nil {
		log.Fatal(err)
	}
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.MaxConns = 4
	// pgxpool pings a connection idle for a second before handing it out
	// ("-- ping", an exchange of its own in the request's trace); the
	// demo's connections are never idle long, so leave that out.
	cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
	if db, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	desc := grpc.ServiceDesc{
		ServiceName: shop.CatalogService,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "ListProducts", Handler: listProducts},
			{MethodName: "GetProduct", Handler: getProduct},
		},
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	s.RegisterService(&desc, struct{}{})
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		s.GracefulStop()
	}()
	log.Printf("catalog: grpc on %s", ln.Addr())
	if err := s.Serve(ln); err != nil {
		log.Fatal(err)
	}
}
