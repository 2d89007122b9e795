package convert

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// logicalLine is one configuration line after comments and backslash
// continuations are handled; line is where it starts.
type logicalLine struct {
	text string
	line int
}

// readLines splits httpd configuration text into logical lines: a line that
// ends in "\" continues on the next one (Apache joins them as written, so
// the next line's leading blanks separate the words); blank lines and lines
// whose first non-blank character is "#" are dropped. Apache has no
// trailing comments: a "#" later in a line is part of the arguments.
func readLines(r io.Reader) ([]logicalLine, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var out []logicalLine
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		raw := strings.TrimRight(sc.Text(), "\r")
		if cur.Len() == 0 {
			start = n
		}
		if t := strings.TrimRight(raw, " \t"); strings.HasSuffix(t, `\`) {
			cur.WriteString(t[:len(t)-1])
			continue
		}
		cur.WriteString(raw)
		if t := strings.TrimSpace(cur.String()); t != "" && t[0] != '#' {
			out = append(out, logicalLine{t, start})
		}
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if t := strings.TrimSpace(cur.String()); t != "" && t[0] != '#' {
		out = append(out, logicalLine{t, start}) // a continuation at end of file
	}
	return out, nil
}

// words splits arguments as Apache's ap_getword_conf does: blanks separate
// words; a word that starts with " or ' runs to the matching quote; "\\"
// and, inside quotes, "\<quote>" stand for the character itself.
func words(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " \t")
		if s == "" {
			return out, nil
		}
		var quote byte
		if s[0] == '"' || s[0] == '\'' {
			quote = s[0]
			s = s[1:]
		}
		var b strings.Builder
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if quote == 0 && (c == ' ' || c == '\t') || quote != 0 && c == quote {
				break
			}
			if c == '\\' && i+1 < len(s) && (s[i+1] == '\\' || quote != 0 && s[i+1] == quote) {
				i++
				c = s[i]
			}
			b.WriteByte(c)
		}
		if quote != 0 {
			if i == len(s) {
				return nil, fmt.Errorf("unterminated %c quote", quote)
			}
			i++ // the closing quote
		}
		out = append(out, b.String())
		s = s[i:]
	}
}
