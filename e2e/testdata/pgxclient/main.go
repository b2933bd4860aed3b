// Command pgxclient is the pgx program the e2e tests trace: it talks to
// PostgreSQL over the extended query protocol on one connection and
// prints one JSON line on stdout with the wall-clock window around the
// work it was asked for (after connecting, before closing), the local
// port of its connection, and what the server answered.
//
// -mode batch sends -n statements in one pipelined batch (one Sync):
// alternately an INSERT of a new item and a SELECT of an existing one.
// -mode prepared prepares one statement and executes it -n times.
// -mode errors runs an INSERT that violates the primary key, then a
// statement that does not parse.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

type result struct {
	LocalPort int      `json:"local_port"`
	StartNs   int64    `json:"start_ns"`
	EndNs     int64    `json:"end_ns"`
	Rows      int      `json:"rows"`      // rows read back
	SQLStates []string `json:"sqlstates"` // of the errors, in order
}

func main() {
	dsn := flag.String("dsn", "", "libpq connection string")
	mode := flag.String("mode", "prepared", "batch, prepared or errors")
	n := flag.Int("n", 10, "statements to run")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, *dsn)
	if err != nil {
		log.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	res := result{}
	if a, ok := c.PgConn().Conn().LocalAddr().(*net.TCPAddr); ok {
		res.LocalPort = a.Port
	}
	res.StartNs = time.Now().UnixNano()
	switch *mode {
	case "batch":
		err = batch(ctx, c, *n, &res)
	case "prepared":
		err = prepared(ctx, c, *n, &res)
	case "errors":
		err = failing(ctx, c, &res)
	default:
		err = fmt.Errorf("unknown mode %q", *mode)
	}
	res.EndNs = time.Now().UnixNano()
	if err != nil {
		log.Fatalf("%s: %v", *mode, err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		log.Fatal(err)
	}
}

// batch queues n statements and sends them as one pipeline.
func batch(ctx context.Context, c *pgx.Conn, n int, res *result) error {
	b := &pgx.Batch{}
	for i := range n {
		if i%2 == 0 {
			b.Queue("INSERT INTO items (id, name, qty) VALUES ($1, 'batched', 0)", 1000+i)
		} else {
			b.Queue("SELECT name FROM items WHERE id = $1", i).QueryRow(func(r pgx.Row) error {
				var name string
				res.Rows++
				return r.Scan(&name)
			})
		}
	}
	return c.SendBatch(ctx, b).Close()
}

// prepared executes one prepared statement n times.
func prepared(ctx context.Context, c *pgx.Conn, n int, res *result) error {
	if _, err := c.Prepare(ctx, "get_item", "SELECT name, qty FROM items WHERE id = $1"); err != nil {
		return err
	}
	for i := range n {
		var name string
		var qty int
		if err := c.QueryRow(ctx, "get_item", 1+i%10).Scan(&name, &qty); err != nil {
			return err
		}
		res.Rows++
	}
	return nil
}

// failing runs statements the server rejects, recording their SQLSTATEs.
func failing(ctx context.Context, c *pgx.Conn, res *result) error {
	for _, sql := range []string{
		"INSERT INTO items (id, name, qty) VALUES (1, 'duplicate', 0)",
		"SELEKT 1",
	} {
		_, err := c.Exec(ctx, sql)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			return fmt.Errorf("%q: %v, want a server error", sql, err)
		}
		res.SQLStates = append(res.SQLStates, pe.Code)
	}
	return nil
}
