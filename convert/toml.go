package convert

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The output is written by hand rather than with a TOML encoder so that
// every key can carry the Apache line it came from as a comment, and tables
// keep the order of the source.

// table is one TOML table, or one element of an array of tables.
type table struct {
	header    string   // "[server]", "[[script-alias]]", `[daemon."bob:1"]`
	comments  []string // comment lines above the header
	entries   []*entry
	commented bool // written commented out: a template to adapt by hand
	always    bool // written even without keys ([vhost] must be)
	ident     int  // leading entries that only identify it (a directory's path)
}

type entry struct {
	key     string
	val     any // string, bool, int64, []string or *envTable
	comment string
}

// envTable is the inline table of SetEnv variables, in first-set order.
type envTable struct {
	names []string
	vals  map[string]string
}

func newTable(header string, comments ...string) *table {
	return &table{header: header, comments: comments}
}

func (t *table) find(key string) *entry {
	for _, e := range t.entries {
		if e.key == key {
			return e
		}
	}
	return nil
}

// set gives key a value; a repeated directive replaces the earlier one, as
// the last of them wins in Apache.
func (t *table) set(key string, val any, comment string) {
	if e := t.find(key); e != nil {
		e.val, e.comment = val, comment
		return
	}
	t.entries = append(t.entries, &entry{key, val, comment})
}

// add appends items to a list key, skipping items already there.
func (t *table) add(key string, items []string, comment string) {
	e := t.find(key)
	if e == nil {
		t.entries = append(t.entries, &entry{key, append([]string(nil), items...), comment})
		return
	}
	list := e.val.([]string)
next:
	for _, it := range items {
		for _, have := range list {
			if have == it {
				continue next
			}
		}
		list = append(list, it)
	}
	e.val = list
	if e.comment != comment {
		e.comment += "; " + comment
	}
}

// setEnv is SetEnv: one variable of the context's env table.
func (t *table) setEnv(name, val, comment string) {
	e := t.find("env")
	if e == nil {
		e = &entry{key: "env", val: &envTable{vals: map[string]string{}}, comment: comment}
		t.entries = append(t.entries, e)
	} else if !strings.Contains(e.comment, comment) {
		e.comment += "; " + comment
	}
	env := e.val.(*envTable)
	if _, ok := env.vals[name]; !ok {
		env.names = append(env.names, name)
	}
	env.vals[name] = val
}

// shown: a table with no setting beyond its identifying keys is left out.
func (t *table) shown() bool { return t.always || len(t.entries) > t.ident }

// render writes the table, if shown.
func (t *table) render(b *strings.Builder) {
	if !t.shown() {
		return
	}
	prefix := ""
	if t.commented {
		prefix = "# "
	}
	b.WriteByte('\n')
	for _, c := range t.comments {
		b.WriteString("# " + tomlComment(c) + "\n")
	}
	b.WriteString(prefix + t.header + "\n")
	lines := make([]string, len(t.entries))
	width := 0
	for i, e := range t.entries {
		lines[i] = prefix + tomlKey(e.key) + " = " + tomlValue(e.val)
		if n := utf8.RuneCountInString(lines[i]); e.comment != "" && n > width && n <= 48 {
			width = n
		}
	}
	for i, e := range t.entries {
		b.WriteString(lines[i])
		if e.comment != "" {
			pad := width - utf8.RuneCountInString(lines[i])
			b.WriteString(strings.Repeat(" ", max(pad, 0)) + "  # " + tomlComment(e.comment))
		}
		b.WriteByte('\n')
	}
}

func tomlValue(v any) string {
	switch v := v.(type) {
	case string:
		return tomlString(v)
	case bool:
		return strconv.FormatBool(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case []string:
		q := make([]string, len(v))
		for i, s := range v {
			q[i] = tomlString(s)
		}
		return "[" + strings.Join(q, ", ") + "]"
	case *envTable:
		if len(v.names) == 0 {
			return "{}"
		}
		kv := make([]string, len(v.names))
		for i, n := range v.names {
			kv[i] = tomlKey(n) + " = " + tomlString(v.vals[n])
		}
		return "{ " + strings.Join(kv, ", ") + " }"
	}
	panic(fmt.Sprintf("convert: no TOML form for %T", v))
}

// tomlString quotes s; a literal string ('...') keeps regexes and Windows
// paths readable when it can hold s.
func tomlString(s string) string {
	control := strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0
	if strings.Contains(s, `\`) && !strings.Contains(s, "'") && !control {
		return "'" + s + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlComment is s fit for a comment, which TOML wants in UTF-8 without
// control characters (but tab): a configuration in Latin-1, or with stray
// bytes, has them in the directives that comments quote.
func tomlComment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// tomlKey writes a key bare when TOML allows it, else quoted.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return tomlString(k)
		}
	}
	return k
}
