package convert

import (
	"path/filepath"
	"regexp"
	"strings"
)

// section translates one <Section> and what it holds.
func (c *converter) section(s *scope, n *node) {
	if isConditional(n.key) {
		if n.skip != "" {
			if k := countDirectives(n.kids); k > 0 {
				c.note(n, "%s: %s, as Apache would", n.skip, skipped(k))
			}
			return
		}
		c.walk(s, n.kids)
		return
	}
	switch n.key {
	case "virtualhost":
		c.virtualHost(n)
	case "directory", "directorymatch":
		c.directory(s, n)
	case "location", "locationmatch":
		c.location(s, n)
	case "files", "filesmatch":
		c.files(s, n)
	default:
		c.note(n, "%s; %s", sectionReason(n.key), skipped(countDirectives(n.kids)))
	}
}

func sectionReason(key string) string {
	switch key {
	case "limit", "limitexcept", "requireall", "requireany", "requirenone":
		return "access control: the front end's job"
	case "proxy", "proxymatch":
		return "proxying: the front end's job"
	case "if", "elseif", "else":
		return "expressions have no equivalent"
	}
	return "not a mod_wsgi section"
}

func (c *converter) virtualHost(n *node) {
	p := c.vhosts[n]
	if p.dupOf != "" {
		c.note(n, "same ServerName and port as the <VirtualHost> at %s, which Apache picks; %s",
			p.dupOf, skipped(countDirectives(n.kids)))
		return
	}
	vs := &scope{kind: scopeVHost, f: p.file, tbl: p.file.main, what: n.label()}
	c.walk(vs, n.kids)
	c.finish(p.file)
}

// sectionArg is the path or URL of a section and whether it is a regex
// (<DirectoryMatch re>, <Directory ~ re>).
func sectionArg(n *node) (arg string, regex, ok bool) {
	regex = strings.HasSuffix(n.key, "match")
	switch {
	case len(n.args) == 2 && n.args[0] == "~" && !regex:
		return n.args[1], true, true
	case len(n.args) == 1:
		return n.args[0], regex, true
	}
	return "", false, false
}

// literalRegex turns an anchored regex without metacharacters, such as
// ^/srv/app/ or ^/admin, into the literal prefix it stands for.
func literalRegex(re string) (string, bool) {
	if !strings.HasPrefix(re, "^") {
		return "", false
	}
	re = strings.TrimSuffix(strings.TrimSuffix(re[1:], "$"), "/?")
	var b strings.Builder
	for i := 0; i < len(re); i++ {
		ch := re[i]
		switch {
		case ch == '\\' && i+1 < len(re) && strings.IndexByte(`./-_`, re[i+1]) >= 0:
			i++
			b.WriteByte(re[i])
		case strings.IndexByte(`\.*+?()[]{}|^$`, ch) >= 0:
			return "", false
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), b.Len() > 0
}

// placement checks that a section is in the server config or a vhost.
func (c *converter) placement(s *scope, n *node) bool {
	if s.kind != scopeServer && s.kind != scopeVHost {
		c.note(n, "not allowed in %s; %s", s.what, skipped(countDirectives(n.kids)))
		return false
	}
	return true
}

func (c *converter) directory(s *scope, n *node) {
	if !c.placement(s, n) {
		return
	}
	arg, regex, ok := sectionArg(n)
	if !ok {
		c.note(n, "expects one path; %s", skipped(countDirectives(n.kids)))
		return
	}
	path, why := arg, ""
	if regex {
		if lit, ok := literalRegex(arg); ok {
			path = lit
		} else {
			why = "a regular expression path has no equivalent: write one [[directory]] per directory it matches"
		}
	} else {
		path = c.absPath(arg)
		if strings.ContainsAny(path, "*?[") {
			why = "a wildcard path has no equivalent: write one [[directory]] per directory it matches"
		}
	}
	if why == "" && !filepath.IsAbs(path) {
		why = "the path is not absolute"
	}
	if why == "" && path != "/" {
		path = strings.TrimRight(path, "/")
	}
	tmpl := why != ""
	if tmpl {
		c.note(n, "%s; it is in the output as a commented-out template", why)
	}
	ds := &scope{kind: scopeDir, f: s.f, tbl: s.f.directory(path, n.label()+" at "+c.at(n), tmpl), what: n.label(),
		dir: path, auth: s.auth || hasWSGIAuth(n.kids) || c.inheritsAuth(s.f, s.f.dirs, "path", path, dirCovers), tmpl: tmpl}
	c.walk(ds, n.kids)
}

func (c *converter) location(s *scope, n *node) {
	if !c.placement(s, n) {
		return
	}
	arg, regex, ok := sectionArg(n)
	if !ok {
		c.note(n, "expects one URL; %s", skipped(countDirectives(n.kids)))
		return
	}
	url, why := arg, ""
	if regex {
		if lit, ok := literalRegex(arg); ok {
			url = lit
		} else {
			why = "a regular expression URL has no equivalent: write one [[location]] per URL prefix it matches"
		}
	}
	if why == "" && !strings.HasPrefix(url, "/") {
		why = "the URL does not start with /"
	}
	tmpl := why != ""
	if tmpl {
		c.note(n, "%s; it is in the output as a commented-out template", why)
	}
	ls := &scope{kind: scopeLoc, f: s.f, tbl: s.f.location(url, n.label()+" at "+c.at(n), tmpl), what: n.label(),
		url: url, auth: s.auth || hasWSGIAuth(n.kids) || c.inheritsAuth(s.f, s.f.locs, "url", url, urlCovers), tmpl: tmpl}
	c.walk(ls, n.kids)
}

// Patterns of <Files>/<FilesMatch> that select by extension.
var (
	extGlob  = regexp.MustCompile(`^\*\.([A-Za-z0-9_]+)$`)
	extRegex = regexp.MustCompile(`^(?:\^?\.[*+])?\\\.\(?([A-Za-z0-9_|]+)\)?\$$`)
)

// files handles <Files> inside a <Directory>: one file name becomes a
// [[directory]] of that file (groups treats a file path as a directory
// holding just it); a *.ext pattern can only carry the wsgi-script handler.
func (c *converter) files(s *scope, n *node) {
	arg, regex, ok := sectionArg(n)
	if !ok || s.kind == scopeLoc || s.kind == scopeFiles {
		c.note(n, "not translated here; %s", skipped(countDirectives(n.kids)))
		return
	}
	var exts []string
	name := ""
	if regex {
		if m := extRegex.FindStringSubmatch(arg); m != nil {
			exts = strings.Split(m[1], "|")
		} else if lit, ok := literalRegex(arg); ok && strings.HasSuffix(arg, "$") && !strings.Contains(lit, "/") {
			name = lit
		}
	} else if m := extGlob.FindStringSubmatch(arg); m != nil {
		exts = []string{m[1]}
	} else if arg == "*" {
		c.walk(s, n.kids) // every file: the enclosing context itself
		return
	} else if !strings.ContainsAny(arg, "*?[/") {
		name = arg
	}
	for i := range exts {
		exts[i] = "." + exts[i]
	}
	switch {
	case len(exts) > 0:
		fs := &scope{kind: scopeFiles, f: s.f, what: n.label(), dir: s.dir, exts: exts, tmpl: s.tmpl}
		if s.kind == scopeDir {
			fs.dirTbl = s.tbl
		}
		c.walk(fs, n.kids)
	case name != "" && s.kind == scopeDir:
		t := s.f.directory(filepath.Join(s.dir, name), n.label()+" at "+c.at(n), s.tmpl)
		if len(t.comments) == 1 {
			t.comments = append(t.comments, "Apache also applies it to "+name+" in subdirectories")
		}
		fs := &scope{kind: scopeFiles, f: s.f, tbl: t, what: n.label(), dir: s.dir,
			auth: s.auth || hasWSGIAuth(n.kids), tmpl: s.tmpl}
		c.walk(fs, n.kids)
	case name != "":
		c.note(n, "outside <Directory> it matches %s in every directory, which has no equivalent; %s",
			name, skipped(countDirectives(n.kids)))
	default:
		c.note(n, "only a file name or *.ext pattern has an equivalent; %s", skipped(countDirectives(n.kids)))
	}
}

// inheritsAuth: a less specific context already translated (the vhost,
// the server, a covering directory or location) authenticates with a WSGI
// script, and groups merges contexts key by key, so a Require here is
// enforced with that script.
func (c *converter) inheritsAuth(f *outFile, tables []*table, ident, here string, covers func(outer, inner string) bool) bool {
	hasScript := func(t *table) bool { return t.find("auth-user-script") != nil || t.find("auth-group-script") != nil }
	if hasScript(f.main) || hasScript(c.server.main) {
		return true
	}
	for _, t := range tables {
		if e := t.find(ident); e != nil && !t.commented && hasScript(t) && covers(e.val.(string), here) {
			return true
		}
	}
	return false
}

func dirCovers(outer, inner string) bool {
	return outer == "/" || inner == outer || strings.HasPrefix(inner, outer+"/")
}

func urlCovers(outer, inner string) bool {
	o, i := mountOf(outer), mountOf(inner)
	return o == "" || i == o || strings.HasPrefix(i, o+"/")
}

// hasWSGIAuth: the section authenticates with a WSGI auth script, so its
// AuthType/AuthName/Require are wsgifcgi's to enforce.
func hasWSGIAuth(nodes []*node) bool {
	found := false
	eachDirective(nodes, func(n *node) {
		switch n.key {
		case "wsgiauthuserscript", "wsgiauthgroupscript":
			found = true
		case "authbasicprovider", "authdigestprovider":
			for _, a := range n.args {
				if strings.EqualFold(a, "wsgi") {
					found = true
				}
			}
		}
	})
	return found
}
