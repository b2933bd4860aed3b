package postgres

import "testing"

func TestSanitize(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT ?"},
		{"SELECT * FROM t WHERE id = $1", "SELECT * FROM t WHERE id = $1"},
		{"SELECT name FROM t1 WHERE a = 'x' AND b = 42", "SELECT name FROM t1 WHERE a = ? AND b = ?"},
		{"INSERT INTO items (id, name, qty) VALUES (100, 'it''s new', 42)", "INSERT INTO items (id, name, qty) VALUES (?, ?, ?)"},
		{"SELECT E'a\\'b', 'c'", "SELECT ?, ?"},
		{"SELECT e'\\\\', x'FF', B'0101', N'n', U&'d\\0061t'", "SELECT ?, ?, ?, ?, ?"},
		{"SELECT 'E' || e", "SELECT ? || e"},
		{"SELECT te'x'", "SELECT te?"}, // not a prefix: the end of a word
		{"SELECT 3.14, .5, 1e10, 2.5E-3, 0x1F, 0o17, 0b101, 1_000_000", "SELECT ?, ?, ?, ?, ?, ?, ?, ?"},
		{"SELECT -7", "SELECT -?"},
		{"SELECT col2, t1.c3 FROM t1", "SELECT col2, t1.c3 FROM t1"},
		{`SELECT "col 1", "we""ird 'x' 5" FROM "T2"`, `SELECT "col 1", "we""ird 'x' 5" FROM "T2"`},
		{"SELECT $$it's 5$$, $tag$a $$ b$tag$, $1, a$b", "SELECT ?, ?, $1, a$b"},
		{"SELECT 1 -- secret 'x'\n, 2", "SELECT ? \n, ?"},
		{"SELECT /* a /* nested */ 'x' */ 7", "SELECT   ?"},
		{"SELECT 'unterminated", "SELECT ?"},
		{"SELECT /* unterminated", "SELECT  "},
		{"SELECT $tag$ unterminated", "SELECT ?"},
		{"SELECT $", "SELECT $"},
		{"", ""},
		{"SELECT x FROM t WHERE d > now() - interval '1 day'", "SELECT x FROM t WHERE d > now() - interval ?"},
		{"SELECT true, null, FALSE", "SELECT true, null, FALSE"},
		{"UPDATE t SET v = v + 1 WHERE id IN (1, 2, 3)", "UPDATE t SET v = v + ? WHERE id IN (?, ?, ?)"},
		{"SELECT 'ünï', 'a' 'b'", "SELECT ?, ? ?"},
	} {
		if got := Sanitize(c.in); got != c.want {
			t.Errorf("Sanitize(%q)\n got  %q\n want %q", c.in, got, c.want)
		}
	}
}

func TestSanitizeNoChangeNoAlloc(t *testing.T) {
	q := "SELECT name, qty FROM items WHERE id = $1 AND \"Col\" = $2"
	if n := testing.AllocsPerRun(100, func() { _ = Sanitize(q) }); n != 0 {
		t.Errorf("Sanitize of a parameterised query allocates %v times, want 0", n)
	}
}

func TestKeyword(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT 1", "SELECT"},
		{"  select 1", "SELECT"},
		{"\n-- comment\n/* block /* nested */ */ (SELECT 1) UNION (SELECT 2)", "SELECT"},
		{"with x as (select 1) select * from x", "WITH"},
		{"Insert into t values (1)", "INSERT"},
		{"vacuum", "VACUUM"},
		{"frobnicate the thing", "FROBNICATE"},
		{"123", ""},
		{"", ""},
		{"select1", ""},
		{"SELECT_x", ""},
		{"   ", ""},
		{"abcdefghijklmnopqrstuvwxyzabcdefghijkl", ""},
	} {
		if got := Keyword(c.in); got != c.want {
			t.Errorf("Keyword(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Keyword("update t set x = 1") }); n != 0 {
		t.Errorf("Keyword of a common word allocates %v times, want 0", n)
	}
}

func TestCutText(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"SELECT 1", 100, "SELECT 1"},
		{"SELECT 1\x00junk", 100, "SELECT 1"},
		{"SELECT 'é'", 9, "SELECT '"},   // é is 2 bytes: not cut in half
		{"SELECT 'é'", 10, "SELECT 'é"}, // whole
		{"ab€", 4, "ab"},                // € is 3 bytes
		{"ab€", 5, "ab€"},
		{"ab\xff\xfe", 3, "ab\xff"}, // invalid bytes stay for validUTF8 to replace
	} {
		if got := string(cutText([]byte(c.in), c.max)); got != c.want {
			t.Errorf("cutText(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
	if got := newStmt("SELECT '\xe9t\xe9'", false); got.raw != "SELECT '\uFFFDt\uFFFD'" || got.san != "SELECT ?" {
		t.Errorf("latin-1 text gives raw %q sanitised %q, want valid UTF-8", got.raw, got.san)
	}
}
