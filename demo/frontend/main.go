// Command frontend is the demo shop's web front: Go net/http serving
//
//	GET  /              the product list (catalog ListProducts over gRPC)
//	GET  /product/{id}  one product (catalog GetProduct); 404 when unknown
//	POST /checkout      form product_id, quantity, email: the product's
//	                    price from the catalog, then the order to checkout
//	                    (HTTP/1.1, JSON); 502 when checkout fails
//
// It finds both services by name (catalog.demo.local,
// checkout.demo.local) through the demo's DNS server, with a pure-Go
// resolver pointed at it: every new connection to checkout (which closes
// each one after its answer) makes real DNS queries.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weftrace/weft/demo/internal/shop"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>weft demo shop</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1><a href="/">weft demo shop</a></h1>
{{with .Products}}<ul>{{range .}}<li><a href="/product/{{.ID}}">{{.Name}}</a> — {{printf "%.2f" .Price}} €</li>{{end}}</ul>{{end}}
{{with .Product}}<h2>{{.Name}}</h2><p>{{printf "%.2f" .Price}} € — {{.Stock}} in stock</p>
<form method="post" action="/checkout"><input type="hidden" name="product_id" value="{{.ID}}">
<input name="quantity" value="1" size="2"> <input name="email" value="you@example.com"> <button>Buy</button></form>{{end}}
{{with .Message}}<p>{{.}}</p>{{end}}
</body></html>
`))

type view struct {
	ID, Stock int64
	Name      string
	Price     float64
}

func toView(p shop.Product) view {
	return view{ID: p.ID, Stock: p.Stock, Name: p.Name, Price: float64(p.PriceCents) / 100}
}

type front struct {
	catalog     *grpc.ClientConn
	checkout    *http.Client
	checkoutURL string
}

func (f *front) getProduct(ctx context.Context, id int64) (shop.Product, error) {
	var p shop.Product
	out := new(wrapperspb.StringValue)
	if err := f.catalog.Invoke(ctx, shop.GetProduct, wrapperspb.Int64(id), out); err != nil {
		return p, err
	}
	return p, json.Unmarshal([]byte(out.Value), &p)
}

func (f *front) index(w http.ResponseWriter, r *http.Request) {
	out := new(wrapperspb.StringValue)
	if err := f.catalog.Invoke(r.Context(), shop.ListProducts, wrapperspb.Int32(12), out); err != nil {
		http.Error(w, "catalog: "+status.Convert(err).Message(), http.StatusBadGateway)
		return
	}
	var ps []shop.Product
	if err := json.Unmarshal([]byte(out.Value), &ps); err != nil {
		http.Error(w, "catalog answer: "+err.Error(), http.StatusBadGateway)
		return
	}
	vs := make([]view, len(ps))
	for i, p := range ps {
		vs[i] = toView(p)
	}
	render(w, http.StatusOK, map[string]any{"Products": vs})
}

func (f *front) product(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad product id", http.StatusBadRequest)
		return
	}
	p, err := f.getProduct(r.Context(), id)
	if status.Code(err) == codes.NotFound {
		render(w, http.StatusNotFound, map[string]any{"Message": "No such product."})
		return
	}
	if err != nil {
		http.Error(w, "catalog: "+err.Error(), http.StatusBadGateway)
		return
	}
	render(w, http.StatusOK, map[string]any{"Product": toView(p)})
}

func (f *front) checkoutOrder(w http.ResponseWriter, r *http.Request) {
	id, err1 := strconv.ParseInt(r.FormValue("product_id"), 10, 64)
	qty, err2 := strconv.ParseInt(r.FormValue("quantity"), 10, 64)
	if err1 != nil || err2 != nil || qty < 1 || qty > 10 {
		http.Error(w, "bad order", http.StatusBadRequest)
		return
	}
	p, err := f.getProduct(r.Context(), id)
	if status.Code(err) == codes.NotFound {
		http.Error(w, "no such product", http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, "catalog: "+err.Error(), http.StatusBadGateway)
		return
	}
	order, _ := json.Marshal(map[string]any{"product_id": p.ID, "quantity": qty, "price_cents": p.PriceCents, "email": r.FormValue("email")})
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, f.checkoutURL+"/orders", bytes.NewReader(order))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.checkout.Do(req)
	if err != nil {
		http.Error(w, "checkout: "+err.Error(), http.StatusBadGateway)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		http.Error(w, "checkout failed: "+resp.Status, http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	w.Write(body)
}

func render(w http.ResponseWriter, code int, data map[string]any) {
	var b bytes.Buffer
	if err := page.Execute(&b, data); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(b.Bytes())
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "HTTP listen address")
	catalog := flag.String("catalog", "catalog.demo.local:50051", "catalog gRPC address (host:port)")
	checkoutURL := flag.String("checkout", "http://checkout.demo.local:8081", "checkout base URL")
	dns := flag.String("dns", "127.0.0.1:10053", "DNS server that resolves the service names (UDP host:port)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)

	dialer := &net.Dialer{Resolver: shop.Resolver(*dns), Timeout: 3 * time.Second}
	cc, err := grpc.NewClient("passthrough:///"+*catalog,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", a) }))
	if err != nil {
		log.Fatal(err)
	}
	defer cc.Close()
	f := &front{
		catalog:     cc,
		checkout:    &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 8}},
		checkoutURL: *checkoutURL,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", f.index)
	mux.HandleFunc("GET /product/{id}", f.product)
	mux.HandleFunc("POST /checkout", f.checkoutOrder)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	log.Printf("frontend: http on %s (catalog %s, checkout %s, dns %s)", *addr, *catalog, *checkoutURL, *dns)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(fmt.Errorf("frontend: %w", err))
	}
}
