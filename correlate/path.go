package correlate

import "strings"

// idPlaceholder replaces a path segment that looks like an identifier, so
// /items/42 and /items/43 share one span name.
const idPlaceholder = "{id}"

// requestPath returns the path of an HTTP request target, for url.path and
// the span name: the query and fragment are cut (parsers should have done
// so already), and an absolute-form target (a request to a proxy) loses its
// scheme and authority. Other forms ("*", a CONNECT authority) come back
// unchanged and do not start with '/'.
func requestPath(target string) string {
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	if strings.HasPrefix(target, "/") {
		return target
	}
	for _, scheme := range [...]string{"http://", "https://"} {
		if len(target) >= len(scheme) && strings.EqualFold(target[:len(scheme)], scheme) {
			rest := target[len(scheme):]
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				return rest[i:]
			}
			return "/"
		}
	}
	return target
}

// appendTemplate writes path to b with id-like segments replaced by
// idPlaceholder.
func appendTemplate(b *strings.Builder, path string) {
	for len(path) > 0 {
		seg, rest, slash := strings.Cut(path, "/")
		if isIDSegment(seg) {
			b.WriteString(idPlaceholder)
		} else {
			b.WriteString(seg)
		}
		if slash {
			b.WriteByte('/')
		}
		path = rest
	}
}

// isIDSegment reports whether a path segment looks like an identifier
// rather than a name. It must stay cheap and predictable; the rules, in
// order:
//
//   - all digits: 42, 2024
//   - a UUID: 123e4567-e89b-12d3-a456-426614174000 (either case)
//   - 16 or more hex digits: object ids, hashes
//   - a token with a digit and any of: a run of 4 or more digits
//     (order-12345, 2024-01-31, INV2024001); 4 or more letter/digit
//     alternations (a1b2c3, 3f2a9c1); or 16 or more characters, a letter
//     among them, and no '-' (cus_NffrFeUfNV2Hib, ULIDs), since long
//     hyphenated runs are slugs of words.
//
// Names with a few digits stay: v1, v1beta1, oauth2, sha256, x86_64, i18n.
func isIDSegment(s string) bool {
	if s == "" {
		return false
	}
	if isUUID(s) {
		return true
	}
	var digits, letters, hexes, run, maxRun, alternations int
	hyphen := false
	prev := byte(0) // 'a' after a letter, '0' after a digit, 0 otherwise
	for i := 0; i < len(s); i++ {
		c := s[i]
		var class byte
		switch {
		case c >= '0' && c <= '9':
			digits++
			hexes++
			run++
			maxRun = max(maxRun, run)
			class = '0'
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters++
			if c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' {
				hexes++
			}
			run = 0
			class = 'a'
		default:
			hyphen = hyphen || c == '-'
			run = 0
		}
		if class != 0 && prev != 0 && class != prev {
			alternations++
		}
		prev = class
	}
	switch {
	case digits == len(s):
		return true
	case hexes == len(s) && len(s) >= 16:
		return true
	case digits == 0:
		return false
	case maxRun >= 4, alternations >= 4:
		return true
	}
	return len(s) >= 16 && letters > 0 && !hyphen
}

// isUUID reports whether s is a UUID in its canonical 8-4-4-4-12 form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
