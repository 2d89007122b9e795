package convert

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// outFile is one conf.d file being built: the server context or one vhost.
type outFile struct {
	name     string
	header   []string // comment lines at the top
	main     *table   // [server] or [vhost]
	embedded *table
	daemons  []*table
	imports  []*table
	aliases  []*table
	matches  []*table
	locs     []*table
	dirs     []*table

	// Merging: Apache merges repeated sections for the same path, and
	// groups.Load refuses two script-aliases for the same mount.
	dirByPath map[string]*table
	locByURL  map[string]*table
	mounts    map[string]string // mount -> FILE:LINE of its WSGIScriptAlias
	vhostName string            // lower-cased server-name; "" for the server context

	// Alias and <Location> SetHandler wsgi-script pairs, matched at the end
	// of the context (the reference gives the pair as WSGIScriptAlias).
	staticAliases []*node
	locHandlers   []locHandler
}

type locHandler struct {
	url string
	n   *node // the SetHandler line
}

func newOutFile(name string, main *table) *outFile {
	return &outFile{name: name, main: main, dirByPath: map[string]*table{},
		locByURL: map[string]*table{}, mounts: map[string]string{}}
}

// render writes the file's TOML text.
func (f *outFile) render() string {
	var b strings.Builder
	for _, h := range f.header {
		b.WriteString("# " + tomlComment(h) + "\n")
	}
	for _, t := range f.tables() {
		t.render(&b)
	}
	return b.String()
}

// tables is every table of the file, in the order they are written.
func (f *outFile) tables() []*table {
	ts := []*table{f.main}
	if f.embedded != nil {
		ts = append(ts, f.embedded)
	}
	for _, list := range [][]*table{f.daemons, f.imports, f.aliases, f.matches, f.locs, f.dirs} {
		ts = append(ts, list...)
	}
	return ts
}

// notUTF8 lists the keys of f whose values are not UTF-8, which TOML cannot
// hold (tomlString writes U+FFFD for each bad byte), with their comments.
func (f *outFile) notUTF8() []string {
	var bad []string
	for _, t := range f.tables() {
		for _, e := range t.entries {
			var vals []string
			switch v := e.val.(type) {
			case string:
				vals = []string{v}
			case []string:
				vals = v
			case *envTable:
				for _, n := range v.names {
					vals = append(vals, n, v.vals[n])
				}
			}
			for _, v := range vals {
				if !utf8.ValidString(v) {
					where := e.comment
					if where == "" && len(t.comments) > 0 {
						where = t.comments[0]
					}
					bad = append(bad, fmt.Sprintf("%s %s (%s)", t.header, e.key, tomlComment(where)))
					break
				}
			}
		}
	}
	return bad
}

// empty reports a server file with nothing to say.
func (f *outFile) empty() bool {
	if f.main.shown() || f.embedded != nil && f.embedded.shown() {
		return false
	}
	for _, list := range [][]*table{f.daemons, f.imports, f.aliases, f.matches, f.locs, f.dirs} {
		for _, t := range list {
			if t.shown() {
				return false
			}
		}
	}
	return true
}

// directory returns the [[directory]] for path, creating it on first use.
func (f *outFile) directory(path, comment string, commented bool) *table {
	key := filepath.Clean(path)
	if commented {
		key = "template:" + path
	}
	if t, ok := f.dirByPath[key]; ok {
		return t
	}
	t := newTable("[[directory]]", comment)
	t.commented, t.ident = commented, 1
	t.set("path", path, "")
	f.dirByPath[key] = t
	f.dirs = append(f.dirs, t)
	return t
}

// location returns the [[location]] for url, creating it on first use.
func (f *outFile) location(url, comment string, commented bool) *table {
	key := strings.TrimRight(url, "/")
	if commented {
		key = "template:" + url
	}
	if t, ok := f.locByURL[key]; ok {
		return t
	}
	t := newTable("[[location]]", comment)
	t.commented, t.ident = commented, 1
	t.set("url", url, "")
	f.locByURL[key] = t
	f.locs = append(f.locs, t)
	return t
}
