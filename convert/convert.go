// Package convert translates an Apache httpd configuration that uses
// mod_wsgi into wsgifcgi's conf.d TOML: one file for the server context and
// one per <VirtualHost>. What has no equivalent is reported, with its
// FILE:LINE and the reason, as a Note.
package convert

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Note is a directive that was not carried over.
type Note struct {
	File      string
	Line      int
	Directive string
	Reason    string
	seq       int
}

func (n Note) String() string {
	return fmt.Sprintf("%s:%d: %s: not translated (%s)", n.File, n.Line, n.Directive, n.Reason)
}

// File is one converted conf.d file.
type File struct {
	Name string // "00-server.toml", "10-www.example.com.toml"
	Text string
}

// Result is a converted configuration: the files in name order (the order
// groups.Load reads them) and the notes in configuration order.
type Result struct {
	Files []File
	Notes []Note
	// Warnings are translated lines that need a look, each naming the
	// output file to change.
	Warnings []Warning
}

// Warning is a translated line that needs a look.
type Warning struct {
	File string // output file to change ("10-www.example.com.toml")
	text string // with %s where the file goes
}

// Text is the warning with the output file as written into dir ("" for
// stdout, where each file is headed by its name).
func (w Warning) Text(dir string) string {
	return fmt.Sprintf(w.text, filepath.Join(dir, w.File))
}

// Write prints every file, each after a "# ==> NAME <==" line.
func (r *Result) Write(w io.Writer) error {
	for i, f := range r.Files {
		sep := "\n"
		if i == 0 {
			sep = ""
		}
		if _, err := fmt.Fprintf(w, "%s# ==> %s <==\n%s", sep, f.Name, f.Text); err != nil {
			return err
		}
	}
	return nil
}

// WriteDir writes the files into dir, creating it if needed.
func (r *Result) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range r.Files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), []byte(f.Text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Convert reads the httpd configuration at path, following its Includes.
// The error is a read or syntax error (a missing include, an unbalanced
// section); everything else ends up in the Result.
func Convert(path string) (*Result, error) {
	t, err := parse(path)
	if err != nil {
		return nil, err
	}
	c := &converter{t: t, source: path, daemons: map[string]daemonOwner{}, vhosts: map[*node]*vhostPlan{}}
	c.server = newOutFile("00-server.toml", newTable("[server]"))
	c.server.header = []string{"Converted by `wsgifcgi convert` from " + path + ": the server context."}
	if err := c.plan(); err != nil {
		return nil, err
	}
	c.walk(&scope{kind: scopeServer, f: c.server, tbl: c.server.main, what: "the server config"}, t.nodes)
	c.finish(c.server)

	res := &Result{}
	files := []*outFile{c.server}
	for _, p := range c.order {
		if p.file != nil {
			files = append(files, p.file)
		}
	}
	for _, f := range files {
		if f == c.server && f.empty() && len(files) > 1 {
			continue
		}
		res.Files = append(res.Files, File{Name: f.name, Text: f.render()})
		for _, key := range f.notUTF8() {
			c.warnings = append(c.warnings, Warning{File: f.name, text: "%s: " + strings.ReplaceAll(key, "%", "%%") +
				": the value has bytes that are not UTF-8 (a configuration in Latin-1?), which TOML cannot hold: " +
				"each is written as U+FFFD; write the value in UTF-8"})
		}
	}
	sort.SliceStable(res.Files, func(i, j int) bool { return res.Files[i].Name < res.Files[j].Name })
	sort.SliceStable(c.notes, func(i, j int) bool { return c.notes[i].seq < c.notes[j].seq })
	res.Notes = c.notes
	res.Warnings = c.warnings
	return res, nil
}

// converter holds the state of one conversion.
type converter struct {
	t        *tree
	source   string
	server   *outFile
	vhosts   map[*node]*vhostPlan
	order    []*vhostPlan
	daemons  map[string]daemonOwner // every WSGIDaemonProcess, found before translating
	notes    []Note
	warnings []Warning
}

type scopeKind int

const (
	scopeServer scopeKind = iota
	scopeVHost
	scopeDir
	scopeLoc
	scopeFiles
)

// scope is the context a directive is read in.
type scope struct {
	kind scopeKind
	f    *outFile
	tbl  *table // where context keys go; nil when none can (<Files *.ext>)
	what string // for notes: "the server config", "<Directory /srv>"

	dir    string   // scopeDir: its path; scopeFiles: the enclosing one ("" if none)
	dirTbl *table   // scopeFiles: the enclosing [[directory]]
	exts   []string // scopeFiles by extension: the extensions it selects
	url    string   // scopeLoc: its URL prefix
	auth   bool     // the section authenticates with a WSGI auth script
	tmpl   bool     // inside a section written as a commented-out template
}

func (c *converter) note(n *node, format string, args ...any) {
	c.noteAs(n, n.name, format, args...)
}

func (c *converter) noteAs(n *node, directive, format string, args ...any) {
	c.notes = append(c.notes, Note{File: n.file, Line: n.line, Directive: directive, Reason: fmt.Sprintf(format, args...), seq: n.seq})
}

// src is the trailing comment of a key: where it came from.
func (c *converter) src(n *node) string { return n.name + " at " + c.at(n) }

// at is FILE:LINE with FILE relative to the main file's directory, to keep
// the comments of the output short.
func (c *converter) at(n *node) string {
	if r, err := filepath.Rel(c.t.mainDir, n.file); err == nil && !strings.HasPrefix(r, "..") {
		return fmt.Sprintf("%s:%d", r, n.line)
	}
	return n.where()
}

func (c *converter) walk(s *scope, nodes []*node) {
	for _, n := range nodes {
		if n.section {
			c.section(s, n)
		} else {
			c.directive(s, n)
		}
	}
}

// countDirectives counts the directives under n, for notes on skipped sections.
func countDirectives(nodes []*node) int {
	k := 0
	for _, n := range nodes {
		if n.section {
			k += countDirectives(n.kids)
		} else {
			k++
		}
	}
	return k
}

// skipped words the count of directives a note leaves out.
func skipped(k int) string {
	switch k {
	case 0:
		return "it is empty"
	case 1:
		return "its 1 directive is skipped"
	}
	return fmt.Sprintf("its %d directives are skipped", k)
}

// isConditional: sections that only decide whether their content is read.
func isConditional(key string) bool {
	switch key {
	case "ifmodule", "ifdefine", "ifversion", "iffile", "ifdirective", "ifsection":
		return true
	}
	return false
}

// eachDirective calls fn for the directives of nodes, looking into the
// conditional sections that are read but into no other section.
func eachDirective(nodes []*node, fn func(*node)) {
	for _, n := range nodes {
		switch {
		case !n.section:
			fn(n)
		case isConditional(n.key) && n.skip == "":
			eachDirective(n.kids, fn)
		}
	}
}

// eachSection is eachDirective for the sections with the given key.
func eachSection(nodes []*node, key string, fn func(*node)) {
	for _, n := range nodes {
		switch {
		case !n.section:
		case n.key == key:
			fn(n)
		case isConditional(n.key) && n.skip == "":
			eachSection(n.kids, key, fn)
		}
	}
}

// absPath makes a configured path absolute the way Apache does, against
// ServerRoot, or the main file's directory when there is none. A trailing
// "/" (the directory form of WSGIScriptAlias) is kept.
func (c *converter) absPath(p string) string {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "%{") || strings.HasPrefix(p, "$") {
		return p
	}
	base := c.t.serverRoot
	if base == "" {
		base = c.t.mainDir
	}
	if b, err := filepath.Abs(base); err == nil {
		base = b
	}
	j := filepath.Join(base, p)
	if strings.HasSuffix(p, "/") {
		j += "/"
	}
	return j
}
