package postgres

import "strings"

// Sanitize returns SQL text with every literal replaced by ?: quoted
// strings (with their E, B, X, N or U& prefix), dollar-quoted strings and
// numbers. Comments are dropped, since they may carry anything. Quoted
// identifiers, keywords, parameters ($1) and everything else are kept
// byte for byte. Text with nothing to replace is returned as is, without
// allocating; otherwise the result costs one allocation. It never fails:
// an unterminated literal or comment runs to the end, as the server would
// read it.
func Sanitize(q string) string {
	var out strings.Builder
	changed := false
	// change starts the output with q[:i] at the first change.
	change := func(i int) {
		if !changed {
			changed = true
			out.Grow(len(q))
			out.WriteString(q[:i])
		}
	}
	keep := func(s string) {
		if changed {
			out.WriteString(s)
		}
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'':
			change(i)
			out.WriteByte('?')
			i = endQuoted(q, i+1, false)
		case c == '"':
			end := endIdent(q, i+1)
			keep(q[i:end])
			i = end
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			change(i)
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			change(i)
			out.WriteByte(' ')
			i = endBlockComment(q, i+2)
		case c == '$':
			if end, ok := dollarQuoted(q, i); ok {
				change(i)
				out.WriteByte('?')
				i = end
				break
			}
			// A parameter ($1) or a lone $: keep it and its digits.
			j := i + 1
			for j < len(q) && isDigit(q[j]) {
				j++
			}
			keep(q[i:j])
			i = j
		case isDigit(c) || c == '.' && i+1 < len(q) && isDigit(q[i+1]):
			// Digits inside words (t1) go out with the word below.
			change(i)
			out.WriteByte('?')
			i = endNumber(q, i)
		case identChar(c):
			j := i + 1
			for j < len(q) && identChar(q[j]) {
				j++
			}
			if p := literalPrefix(q, i, j); p > 0 {
				// E'...', X'...', U&'...': the prefix is part of the
				// literal.
				change(i)
				out.WriteByte('?')
				i = endQuoted(q, j+p, c == 'E' || c == 'e')
				break
			}
			keep(q[i:j]) // a whole word, so digits inside it stay
			i = j
		default:
			if changed {
				out.WriteByte(c)
			}
			i++
		}
	}
	if !changed {
		return q
	}
	return out.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// identChar says whether c can continue an identifier or keyword
// (PostgreSQL allows $ after the first character; bytes >= 0x80 are
// letters).
func identChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '_' || c == '$' || c >= 0x80
}

// literalPrefix says whether the word q[i:j] is a string-literal prefix
// (E, B, X, N, or U followed by &) before a quote, and returns how many
// bytes after the word lead to the quote's content (1, or 2 for U&).
func literalPrefix(q string, i, j int) int {
	if j-i != 1 || j >= len(q) {
		return 0
	}
	switch q[i] {
	case 'E', 'e', 'B', 'b', 'X', 'x', 'N', 'n':
		if q[j] == '\'' {
			return 1
		}
	case 'U', 'u':
		if j+1 < len(q) && q[j] == '&' && q[j+1] == '\'' {
			return 2
		}
	}
	return 0
}

// endQuoted returns the index just past the quote that closes a string
// whose content starts at i; ” is a quote inside it, and so is \' in an
// escape (E”) string.
func endQuoted(q string, i int, esc bool) int {
	for i < len(q) {
		switch q[i] {
		case '\\':
			if esc {
				i += 2
				continue
			}
		case '\'':
			if i+1 < len(q) && q[i+1] == '\'' {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(q)
}

// endIdent returns the index just past a quoted identifier whose content
// starts at i ("" is a quote inside it).
func endIdent(q string, i int) int {
	for i < len(q) {
		if q[i] == '"' {
			if i+1 < len(q) && q[i+1] == '"' {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return len(q)
}

// endBlockComment returns the index just past a block comment whose
// content starts at i; PostgreSQL's block comments nest.
func endBlockComment(q string, i int) int {
	depth := 1
	for i+1 < len(q) {
		switch {
		case q[i] == '/' && q[i+1] == '*':
			depth++
			i += 2
		case q[i] == '*' && q[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		default:
			i++
		}
	}
	return len(q)
}

// dollarQuoted recognises $tag$...$tag$ at q[i] and returns the index
// just past it.
func dollarQuoted(q string, i int) (int, bool) {
	j := i + 1
	if j < len(q) && isDigit(q[j]) {
		return 0, false // a parameter
	}
	for j < len(q) && q[j] != '$' {
		if !identChar(q[j]) {
			return 0, false
		}
		j++
	}
	if j >= len(q) {
		return 0, false
	}
	tag := q[i : j+1]
	for k := j + 1; k+len(tag) <= len(q); k++ {
		if q[k] == '$' && q[k:k+len(tag)] == tag {
			return k + len(tag), true
		}
	}
	return len(q), true
}

// endNumber returns the index just past a numeric literal starting at i:
// decimal with optional fraction and exponent, or 0x/0o/0b, with _
// separators.
func endNumber(q string, i int) int {
	if q[i] == '0' && i+1 < len(q) {
		switch q[i+1] {
		case 'x', 'X', 'o', 'O', 'b', 'B':
			j := i + 2
			for j < len(q) && (identChar(q[j]) && q[j] != '$') {
				j++
			}
			return j
		}
	}
	j := i
	for j < len(q) && (isDigit(q[j]) || q[j] == '_') {
		j++
	}
	if j < len(q) && q[j] == '.' {
		j++
		for j < len(q) && (isDigit(q[j]) || q[j] == '_') {
			j++
		}
	}
	if j < len(q) && (q[j] == 'e' || q[j] == 'E') {
		k := j + 1
		if k < len(q) && (q[k] == '+' || q[k] == '-') {
			k++
		}
		if k < len(q) && isDigit(q[k]) {
			for k < len(q) && isDigit(q[k]) {
				k++
			}
			j = k
		}
	}
	return j
}

// maxKeyword bounds a word taken as an operation name.
const maxKeyword = 32

// Keyword returns the first word of SQL text in upper case (SELECT,
// INSERT, WITH, ...), skipping blanks, comments and opening parentheses;
// "" when the text does not start with a word. Common keywords cost no
// allocation.
func Keyword(q string) string {
	i := 0
	for i < len(q) {
		switch c := q[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(':
			i++
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			for i < len(q) && q[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			i = endBlockComment(q, i+2)
		default:
			j := i
			for j < len(q) && (q[j] >= 'a' && q[j] <= 'z' || q[j] >= 'A' && q[j] <= 'Z') {
				j++
			}
			if j == i || j-i > maxKeyword || j < len(q) && identChar(q[j]) {
				return ""
			}
			return upperWord(q[i:j])
		}
	}
	return ""
}

// upperWord returns w (ASCII letters) in upper case, interned for the
// usual SQL command words.
func upperWord(w string) string {
	var buf [maxKeyword]byte
	for i := 0; i < len(w); i++ {
		c := w[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	u := buf[:len(w)]
	if k, ok := commonWords[string(u)]; ok {
		return k
	}
	return string(u)
}

// commonWords interns the command words of PostgreSQL's SQL.
var commonWords = func() map[string]string {
	m := map[string]string{}
	for _, w := range []string{
		"ABORT", "ALTER", "ANALYZE", "BEGIN", "CALL", "CHECKPOINT", "CLOSE", "CLUSTER", "COMMENT",
		"COMMIT", "COPY", "CREATE", "DEALLOCATE", "DECLARE", "DELETE", "DISCARD", "DO", "DROP", "END",
		"EXECUTE", "EXPLAIN", "FETCH", "GRANT", "IMPORT", "INSERT", "LISTEN", "LOAD", "LOCK", "MERGE",
		"MOVE", "NOTIFY", "PREPARE", "REASSIGN", "REFRESH", "REINDEX", "RELEASE", "RESET", "REVOKE",
		"ROLLBACK", "SAVEPOINT", "SECURITY", "SELECT", "SET", "SHOW", "START", "TABLE", "TRUNCATE",
		"UNLISTEN", "UPDATE", "VACUUM", "VALUES", "WITH",
	} {
		m[w] = w
	}
	return m
}()
