package main

import (
	"io"
	"testing"
)

// TestDBQueryLiteralsFlag: statement text is sanitised unless the flag
// asks for literals.
func TestDBQueryLiteralsFlag(t *testing.T) {
	noEnv := func(string) string { return "" }
	for _, c := range []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"--db-query-literals"}, true},
		{[]string{"--db-query-literals=false"}, false},
	} {
		cfg, err := parseConfig(c.args, noEnv, io.Discard)
		if err != nil {
			t.Fatalf("parseConfig(%q): %v", c.args, err)
		}
		if cfg.dbQueryLiterals != c.want {
			t.Errorf("parseConfig(%q): literals kept = %v, want %v", c.args, cfg.dbQueryLiterals, c.want)
		}
	}
}
