package convert

import (
	"regexp"
	"strconv"
	"strings"
)

var dollarRef = regexp.MustCompile(`\$([0-9])`)

// topLevel: aliases, daemons and import scripts belong to the server
// config or a <VirtualHost>, as in mod_wsgi.
func (c *converter) topLevel(s *scope, n *node) bool {
	if s.kind != scopeServer && s.kind != scopeVHost {
		c.note(n, "only allowed in the server config or a <VirtualHost>, not in %s", s.what)
		return false
	}
	return true
}

// aliasOptions reads mod_wsgi 4's inline options of WSGIScriptAlias(Match)
// into t; it returns the process and application groups it set.
func (c *converter) aliasOptions(t *table, n *node, opts []string) (pg, ag string) {
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		k = strings.ToLower(k)
		problem := ""
		switch {
		case !ok:
			problem = "expected name=value"
		case k == "process-group":
			if problem = c.processGroupProblem(v); problem == "" {
				t.set(k, v, "")
				pg = v
			}
		case k == "application-group":
			if problem = applicationGroupProblem(v); problem == "" {
				t.set(k, v, "")
				ag = v
			}
		case k == "callable-object":
			if problem = callableProblem(v); problem == "" {
				t.set(k, v, "")
			}
		case k == "pass-authorization":
			switch strings.ToLower(v) {
			case "on":
				t.set(k, true, "")
			case "off":
				t.set(k, false, "")
			default:
				problem = "expects On or Off"
			}
		default:
			problem = "no equivalent"
		}
		if problem != "" {
			c.note(n, "option %s: %s", o, problem)
		}
	}
	return pg, ag
}

func (c *converter) scriptAlias(s *scope, n *node) {
	if !c.topLevel(s, n) {
		return
	}
	if len(n.args) < 2 || !strings.HasPrefix(n.args[0], "/") {
		c.note(n, "expects a URL-path starting with / and a file-path")
		return
	}
	url, path := n.args[0], c.absPath(n.args[1])
	c.addScriptAlias(s.f, n, url, path, n.args[2:], "WSGIScriptAlias at "+c.at(n))
}

// addScriptAlias writes one [[script-alias]] unless its mount is taken.
func (c *converter) addScriptAlias(f *outFile, n *node, url, path string, opts []string, comment string) {
	mount := mountOf(url)
	if at, ok := f.mounts[mount]; ok {
		c.note(n, "%s is already mapped by the WSGIScriptAlias at %s, which mod_wsgi uses", url, at)
		return
	}
	f.mounts[mount] = c.at(n)
	t := newTable("[[script-alias]]", comment)
	t.set("url", url, "")
	t.set("path", path, "")
	pg, ag := c.aliasOptions(t, n, opts)
	f.aliases = append(f.aliases, t)

	// mod_wsgi 4 preloads the script of an alias given both groups, as
	// WSGIImportScript would; a directory has no one script to load.
	dirForm := strings.HasSuffix(path, "/") || url != "/" && strings.HasSuffix(url, "/") || isDir(path)
	if pg == "" || ag == "" || dirForm || strings.HasPrefix(ag, "%{") && ag != "%{GLOBAL}" ||
		strings.HasPrefix(pg, "%{") && pg != "%{GLOBAL}" || !c.daemonVisible(pg, f) {
		return
	}
	im := newTable("[[import-script]]", "preloaded: WSGIScriptAlias at "+c.at(n)+" gives both process-group and application-group")
	im.set("path", path, "")
	im.set("process-group", pg, "")
	im.set("application-group", ag, "")
	f.imports = append(f.imports, im)
}

// daemonVisible: a vhost file may only name its own daemons or the server
// context's (groups.Load refuses an import-script that does otherwise).
func (c *converter) daemonVisible(pg string, f *outFile) bool {
	if pg == "%{GLOBAL}" {
		return true
	}
	o := c.daemons[pg]
	return o.vhost == "" || f.vhostName == "" || o.vhost == f.vhostName
}

func (c *converter) scriptAliasMatch(s *scope, n *node) {
	if !c.topLevel(s, n) {
		return
	}
	if len(n.args) < 2 {
		c.note(n, "expects regex and file-path")
		return
	}
	re, err := regexp.Compile(n.args[0])
	if err != nil {
		c.note(n, "the regular expression %s is not one Go's RE2 accepts: %v", n.args[0], err)
		return
	}
	path := c.absPath(n.args[1])
	if !strings.HasPrefix(path, "/") {
		c.note(n, "file-path %s must be absolute", n.args[1])
		return
	}
	for _, g := range dollarRef.FindAllStringSubmatch(path, -1) {
		if k, _ := strconv.Atoi(g[1]); k > re.NumSubexp() {
			c.note(n, "file-path uses $%d but the regex has %d groups", k, re.NumSubexp())
			return
		}
	}
	t := newTable("[[script-alias-match]]", "WSGIScriptAliasMatch at "+c.at(n))
	t.set("regex", n.args[0], "")
	t.set("path", path, "")
	c.aliasOptions(t, n, n.args[2:])
	s.f.matches = append(s.f.matches, t)
}

func (c *converter) importScript(s *scope, n *node) {
	if !c.topLevel(s, n) {
		return
	}
	if len(n.args) == 0 {
		c.note(n, "expects a script path")
		return
	}
	var pg, ag string
	for _, o := range n.args[1:] {
		k, v, _ := strings.Cut(o, "=")
		switch strings.ToLower(k) {
		case "process-group":
			pg = v
		case "application-group":
			ag = v
		default:
			c.note(n, "option %s: no equivalent", o)
		}
	}
	switch {
	case pg == "" || ag == "":
		c.note(n, "needs both process-group= and application-group=")
		return
	case strings.HasPrefix(pg, "%") && pg != "%{GLOBAL}":
		c.note(n, "process-group=%s: want %%{GLOBAL} or a daemon name", pg)
		return
	case strings.HasPrefix(ag, "%") && ag != "%{GLOBAL}":
		c.note(n, "application-group=%s: want %%{GLOBAL} or a name", ag)
		return
	case pg != "%{GLOBAL}" && c.processGroupProblem(pg) != "":
		c.note(n, "%s", c.processGroupProblem(pg))
		return
	case !c.daemonVisible(pg, s.f):
		c.note(n, "daemon %s belongs to another <VirtualHost>", pg)
		return
	}
	t := newTable("[[import-script]]", "WSGIImportScript at "+c.at(n))
	t.set("path", c.absPath(n.args[0]), "")
	t.set("process-group", pg, "")
	t.set("application-group", ag, "")
	s.f.imports = append(s.f.imports, t)
}

// finish ends a context: an Alias whose URL has a <Location> with
// SetHandler wsgi-script is, as the mod_wsgi reference says, a
// WSGIScriptAlias; the other Aliases are the front end's static files.
func (c *converter) finish(f *outFile) {
	used := map[*node]bool{}
	for _, h := range f.locHandlers {
		var al *node
		for _, a := range f.staticAliases {
			if mountOf(a.args[0]) == mountOf(h.url) {
				al = a
			}
		}
		if al == nil {
			c.note(h.n, "in <Location %s> it needs an Alias of that URL to a directory; WSGIScriptAlias does both", h.url)
			continue
		}
		used[al] = true
		path := c.absPath(al.args[1])
		if !strings.HasSuffix(path, "/") && isDir(path) {
			path += "/"
		}
		c.addScriptAlias(f, al, al.args[0], path, nil,
			"Alias at "+c.at(al)+" with SetHandler wsgi-script at "+c.at(h.n))
	}
	for _, a := range f.staticAliases {
		if !used[a] {
			c.note(a, "static files: the front end serves them, so map %s there", a.args[0])
		}
	}
}
