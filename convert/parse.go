package convert

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// node is one directive or section of the httpd configuration, with the
// included files already spliced in where their Include was.
type node struct {
	name    string // as written: "WSGIScriptAlias", "VirtualHost"
	key     string // lower-cased name: directive names are case-insensitive
	args    []string
	file    string
	line    int
	seq     int // order of appearance across files: notes are sorted by it
	section bool
	skip    string // a conditional section Apache would not read, and why
	kids    []*node
}

func (n *node) where() string { return fmt.Sprintf("%s:%d", n.file, n.line) }

// label is the section as written, e.g. "<Directory /srv/app>".
func (n *node) label() string {
	if len(n.args) == 0 {
		return "<" + n.name + ">"
	}
	return "<" + n.name + " " + strings.Join(n.args, " ") + ">"
}

// tree is a parsed configuration.
type tree struct {
	nodes      []*node
	mainDir    string // directory of the main file, as given
	serverRoot string // the last ServerRoot, "" if none
}

// parser reads one configuration: Include is followed as it is met, Define
// applies to the lines after it, as in Apache.
type parser struct {
	t       *tree
	defines map[string]string
	seq     int
	open    map[string]bool // files being read, to stop include loops
}

// parse reads the configuration rooted at path.
func parse(path string) (*tree, error) {
	p := &parser{t: &tree{mainDir: filepath.Dir(path)}, defines: map[string]string{}, open: map[string]bool{}}
	nodes, err := p.readFile(path)
	if err != nil {
		return nil, err
	}
	p.t.nodes = nodes
	return p.t, nil
}

var defineRef = regexp.MustCompile(`\$\{([^}]+)\}`)

// maxExpanded bounds what ${NAME} references may grow a line to: Defines
// that refer to each other twice would double it at each line.
const maxExpanded = 1 << 20

// expand replaces ${NAME} set by Define; others stay (they come from the
// environment httpd runs in, which the converter cannot know).
func (p *parser) expand(s string) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	limit := max(maxExpanded, len(s))
	var b strings.Builder
	last := 0
	for _, m := range defineRef.FindAllStringSubmatchIndex(s, -1) {
		v, ok := p.defines[s[m[2]:m[3]]]
		if !ok {
			continue
		}
		if b.Len()+m[0]-last+len(v)+len(s)-m[1] > limit {
			return "", fmt.Errorf("the line grows past %d KiB as ${%s} and the like are replaced", limit>>10, s[m[2]:m[3]])
		}
		b.WriteString(s[last:m[0]])
		b.WriteString(v)
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

func (p *parser) newNode(ws []string, file string, line int, section bool) *node {
	p.seq++
	return &node{name: ws[0], key: strings.ToLower(ws[0]), args: ws[1:], file: file, line: line, seq: p.seq, section: section}
}

// readFile parses one file; its sections must balance within it.
func (p *parser) readFile(path string) ([]*node, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if p.open[abs] {
		return nil, fmt.Errorf("%s: include loop", path)
	}
	p.open[abs] = true
	defer delete(p.open, abs)
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	lines, err := readLines(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	root := &node{}
	stack := []*node{root}
	skipping := func() bool {
		for _, s := range stack {
			if s.skip != "" {
				return true
			}
		}
		return false
	}
	for _, l := range lines {
		at := fmt.Sprintf("%s:%d", path, l.line)
		text, err := p.expand(l.text)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", at, err)
		}
		if text = strings.TrimSpace(text); text == "" {
			continue // a line that was only ${NAME} of an empty Define
		}
		cur := stack[len(stack)-1]
		switch {
		case strings.HasPrefix(text, "</"):
			if !strings.HasSuffix(text, ">") {
				return nil, fmt.Errorf("%s: %s: missing closing >", at, text)
			}
			name := strings.TrimSpace(text[2 : len(text)-1])
			if len(stack) == 1 {
				return nil, fmt.Errorf("%s: </%s> without matching <%s> section", at, name, name)
			}
			if !strings.EqualFold(name, cur.name) {
				return nil, fmt.Errorf("%s: </%s> closes <%s> opened at %s", at, name, cur.name, cur.where())
			}
			stack = stack[:len(stack)-1]
		case text[0] == '<':
			if !strings.HasSuffix(text, ">") {
				return nil, fmt.Errorf("%s: %s: missing closing >", at, text)
			}
			ws, err := words(text[1 : len(text)-1])
			if err != nil || len(ws) == 0 {
				return nil, fmt.Errorf("%s: bad section line %q", at, text)
			}
			n := p.newNode(ws, path, l.line, true)
			if !skipping() {
				n.skip = p.condition(n)
			}
			cur.kids = append(cur.kids, n)
			stack = append(stack, n)
		default:
			ws, err := words(text)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", at, err)
			}
			if len(ws) == 0 {
				continue
			}
			n := p.newNode(ws, path, l.line, false)
			if skipping() {
				cur.kids = append(cur.kids, n) // read, never acted on
				continue
			}
			if n.key == "include" || n.key == "includeoptional" {
				kids, err := p.include(n)
				if err != nil {
					return nil, err
				}
				cur.kids = append(cur.kids, kids...)
				continue
			}
			p.apply(n)
			cur.kids = append(cur.kids, n)
		}
	}
	if len(stack) > 1 {
		open := stack[len(stack)-1]
		return nil, fmt.Errorf("%s: <%s> is not closed by </%s> before the end of the file", open.where(), open.name, open.name)
	}
	return root.kids, nil
}

// apply handles the directives that change how the rest is read.
func (p *parser) apply(n *node) {
	switch n.key {
	case "serverroot":
		if len(n.args) == 1 {
			p.t.serverRoot = n.args[0]
		}
	case "define":
		switch len(n.args) {
		case 1:
			p.defines[n.args[0]] = ""
		case 2:
			p.defines[n.args[0]] = n.args[1]
		}
	case "undefine":
		if len(n.args) == 1 {
			delete(p.defines, n.args[0])
		}
	}
}

// condition says why a conditional section would be skipped ("" if read).
// Every module is taken as loaded, so only <IfModule !...> is skipped;
// <IfDefine> is decided by the Define lines seen so far.
func (p *parser) condition(n *node) string {
	if len(n.args) != 1 {
		return ""
	}
	arg := n.args[0]
	neg := strings.HasPrefix(arg, "!")
	name := strings.TrimPrefix(arg, "!")
	switch n.key {
	case "ifmodule":
		if neg {
			return "every module is taken as loaded"
		}
	case "ifdefine":
		if _, ok := p.defines[name]; ok == neg {
			if neg {
				return name + " is defined"
			}
			return name + " is not defined by a Define"
		}
	}
	return ""
}

// include reads the files an Include names, in name order.
func (p *parser) include(n *node) ([]*node, error) {
	if len(n.args) != 1 {
		return nil, fmt.Errorf("%s: %s takes one path", n.where(), n.name)
	}
	files, err := p.includeFiles(n.args[0], n.key == "includeoptional")
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", n.where(), n.name, n.args[0], err)
	}
	var out []*node
	for _, f := range files {
		kids, err := p.readFile(f)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil, fmt.Errorf("%s: %s: %w", n.where(), n.name, err)
			}
			return nil, err
		}
		out = append(out, kids...)
	}
	return out, nil
}

// includeFiles resolves an Include path: absolute, else under ServerRoot,
// else under the main file's directory (a copied configuration tree keeps
// working even though its ServerRoot names the original place).
func (p *parser) includeFiles(pat string, optional bool) ([]string, error) {
	var bases []string
	if filepath.IsAbs(pat) {
		bases = []string{""}
	} else {
		if p.t.serverRoot != "" {
			bases = append(bases, p.t.serverRoot)
		}
		bases = append(bases, p.t.mainDir)
	}
	glob := strings.ContainsAny(pat, "*?[")
	for _, b := range bases {
		full := filepath.Join(b, pat)
		if glob {
			matches, err := filepath.Glob(full)
			if err != nil {
				return nil, err
			}
			var files []string
			for _, m := range matches {
				if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
					files = append(files, m)
				}
			}
			if len(files) > 0 {
				return files, nil
			}
			continue
		}
		st, err := os.Stat(full)
		if err != nil {
			continue
		}
		if !st.IsDir() {
			return []string{full}, nil
		}
		return filesUnder(full)
	}
	if optional {
		return nil, nil
	}
	where := ""
	if bases[0] != "" {
		where = " (looked in " + strings.Join(bases, " and ") + ")"
	}
	if glob {
		return nil, fmt.Errorf("no file matches%s", where)
	}
	return nil, fmt.Errorf("no such file or directory%s", where)
}

// filesUnder lists the regular files under dir, recursively, in name order
// (Include of a directory).
func filesUnder(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}
