// Package shop holds what the demo shop's services share: the catalog's
// gRPC method names (the service is described by hand, no protoc), the
// product JSON, and a resolver that sends every query to the demo's own
// DNS server. Nothing here traces anything: weft sees the services from
// the kernel.
package shop

import (
	"context"
	"net"
	"os"
	"time"
)

// The catalog's gRPC service, described by hand with wrapperspb messages:
//
//	ListProducts  Int32Value (limit) -> StringValue (JSON []Product)
//	GetProduct    Int64Value (id)    -> StringValue (JSON Product); NOT_FOUND
const (
	CatalogService = "shop.v1.Catalog"
	ListProducts   = "/" + CatalogService + "/ListProducts"
	GetProduct     = "/" + CatalogService + "/GetProduct"
)

// Product is one row of the products table.
type Product struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	Stock      int64  `json:"stock,omitempty"`
}

// Resolver returns a pure-Go resolver whose queries all go to the DNS
// server at addr (host:port, UDP), so that the services' name look-ups are
// real DNS exchanges on loopback that weft can see.
func Resolver(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := net.Dialer{Timeout: 2 * time.Second}
			return d.DialContext(ctx, network, addr)
		},
	}
}

// Env returns the environment variable k, or def when it is empty.
func Env(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
