package groups

import (
	"strconv"
	"strings"
)

// The toml package keeps key positions private (and records one position per
// key name even across [[array]] elements), so scanPositions does a light
// line-oriented pass of its own: table headers, [[array]] elements and
// `key =` lines, skipping multi-line strings, arrays and inline tables. It
// only serves error messages, so a miss just drops the line number.

// keyID joins key components; array elements are their decimal index.
func keyID(path []string) string { return strings.Join(path, "\x00") }

// scanPositions maps every key path it recognises to its 1-based line.
func scanPositions(src string) map[string]int {
	pos := make(map[string]int)
	arrays := make(map[string]int) // [[array]] key -> elements so far
	var cur []string
	depth, openML := 0, ""
	record := func(path []string, line int) {
		for i := range path {
			if _, ok := pos[keyID(path[:i+1])]; !ok {
				pos[keyID(path[:i+1])] = line
			}
		}
	}
	// resolve maps header components to a path, entering the last element
	// of any array of tables on the way (as TOML does).
	resolve := func(comps []string) []string {
		var out []string
		for _, c := range comps {
			out = append(out, c)
			if n := arrays[keyID(out)]; n > 0 {
				out = append(out, strconv.Itoa(n-1))
			}
		}
		return out
	}
	for i, line := range strings.Split(src, "\n") {
		n := i + 1
		if openML != "" || depth > 0 {
			scanValue(line, &depth, &openML)
			continue
		}
		t := strings.TrimSpace(line)
		switch {
		case t == "" || t[0] == '#':
		case strings.HasPrefix(t, "[["):
			comps, _, ok := parseKey(t[2:], "]]")
			if !ok || len(comps) == 0 {
				continue
			}
			base := append(resolve(comps[:len(comps)-1]), comps[len(comps)-1])
			idx := arrays[keyID(base)]
			arrays[keyID(base)] = idx + 1
			cur = append(base, strconv.Itoa(idx))
			record(cur, n)
		case t[0] == '[':
			comps, _, ok := parseKey(t[1:], "]")
			if !ok {
				continue
			}
			cur = resolve(comps)
			record(cur, n)
		default:
			comps, rest, ok := parseKey(t, "=")
			if !ok {
				continue
			}
			record(append(append([]string(nil), cur...), comps...), n)
			scanValue(rest, &depth, &openML)
		}
	}
	return pos
}

// parseKey reads a dotted key (bare, "basic" or 'literal' parts) up to end.
func parseKey(s, end string) (comps []string, rest string, ok bool) {
	for {
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, end) {
			return comps, s[len(end):], len(comps) > 0
		}
		if s == "" {
			return nil, "", false
		}
		switch s[0] {
		case '"':
			j := 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, "", false
			}
			u, err := strconv.Unquote(s[:j+1])
			if err != nil {
				u = s[1:j]
			}
			comps, s = append(comps, u), s[j+1:]
		case '\'':
			j := strings.IndexByte(s[1:], '\'')
			if j < 0 {
				return nil, "", false
			}
			comps, s = append(comps, s[1:j+1]), s[j+2:]
		default:
			j := 0
			for j < len(s) && isBareKeyByte(s[j]) {
				j++
			}
			if j == 0 {
				return nil, "", false
			}
			comps, s = append(comps, s[:j]), s[j:]
		}
		s = strings.TrimLeft(s, " \t")
		if strings.HasPrefix(s, ".") {
			s = s[1:]
		}
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// scanValue follows a value across lines: open brackets and multi-line strings.
func scanValue(s string, depth *int, openML *string) {
	for i := 0; i < len(s); {
		if *openML != "" {
			j := strings.Index(s[i:], *openML)
			if j < 0 {
				return
			}
			i += j + 3
			for i < len(s) && s[i] == (*openML)[0] { // up to two quotes may close the content
				i++
			}
			*openML = ""
			continue
		}
		switch c := s[i]; {
		case c == '#':
			return
		case strings.HasPrefix(s[i:], `"""`) || strings.HasPrefix(s[i:], `'''`):
			*openML = s[i : i+3]
			i += 3
		case c == '"':
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return
			}
			i += j + 2
		case c == '[' || c == '{':
			*depth++
			i++
		case c == ']' || c == '}':
			*depth--
			i++
		default:
			i++
		}
	}
}
