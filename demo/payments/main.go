// Command payments is the demo shop's payment service: Go net/http,
// POST /charge with a JSON body, which records the payment in PostgreSQL
// (pgx, simple query protocol, literals in the SQL text) and answers with
// its id.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

type charge struct {
	ProductID   int64  `json:"product_id"`
	Quantity    int64  `json:"quantity"`
	AmountCents int64  `json:"amount_cents"`
	Email       string `json:"email"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8082", "HTTP listen address")
	dsn := flag.String("db", "host=127.0.0.1 port=5432 user=postgres dbname=shop", "PostgreSQL connection string")
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
	db, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /charge", func(w http.ResponseWriter, r *http.Request) {
		var c charge
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&c); err != nil || c.Quantity <= 0 || c.AmountCents <= 0 {
			http.Error(w, "bad charge", http.StatusBadRequest)
			return
		}
		// Literals in the text on purpose: weft replaces them by ? in
		// db.query.text (the email never reaches a span).
		q := fmt.Sprintf("INSERT INTO payments (product_id, quantity, amount_cents, email) VALUES (%d, %d, %d, '%s') RETURNING id",
			c.ProductID, c.Quantity, c.AmountCents, strings.ReplaceAll(c.Email, "'", "''"))
		var id int64
		if err := db.QueryRow(r.Context(), q).Scan(&id); err != nil {
			log.Printf("payments: insert: %v", err)
			http.Error(w, "payment not recorded", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, "{\"payment_id\":%d}\n", id)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	log.Printf("payments: http on %s", *addr)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
