package convert

import (
	"strings"
)

// directive translates one directive that is not a section.
func (c *converter) directive(s *scope, n *node) {
	switch n.key {
	case "serverroot", "define", "undefine":
		return // used while reading
	}
	if !translated(n.key) {
		c.note(n, "%s", briefReason(n.key))
		return
	}
	if strings.Contains(strings.Join(n.args, " "), "${") {
		c.note(n, "it uses a ${VARIABLE} that no Define sets: httpd takes it from its environment")
		return
	}
	if strings.HasPrefix(n.key, "wsgi") {
		c.wsgi(s, n)
		return
	}
	switch n.key {
	case "servername":
		c.serverName(s, n)
	case "serveralias":
		if s.kind != scopeVHost {
			c.note(n, "only allowed in a <VirtualHost>")
		}
	case "user", "group":
		c.userGroup(s, n)
	case "setenv":
		if len(n.args) < 1 || len(n.args) > 2 {
			c.note(n, "expects NAME [VALUE]")
			return
		}
		if s.tbl == nil {
			c.note(n, "in %s: settings for files selected by extension have no equivalent", s.what)
			return
		}
		val := ""
		if len(n.args) == 2 {
			val = n.args[1]
		}
		s.tbl.setEnv(n.args[0], val, c.src(n))
	case "allowencodedslashes":
		c.allowEncodedSlashes(s, n)
	case "authtype", "authname", "require", "authbasicprovider", "authdigestprovider":
		c.auth(s, n)
	case "sethandler":
		c.setHandler(s, n)
	case "addhandler":
		c.addHandler(s, n)
	case "options":
		c.options(n)
	case "alias":
		if len(n.args) != 2 || s.kind != scopeServer && s.kind != scopeVHost {
			c.note(n, "static files: the front end serves them")
			return
		}
		s.f.staticAliases = append(s.f.staticAliases, n) // settled in finish
	}
}

// translated: the directives directive knows; the rest get briefReason.
func translated(key string) bool {
	switch key {
	case "servername", "serveralias", "user", "group", "setenv", "allowencodedslashes",
		"authtype", "authname", "require", "authbasicprovider", "authdigestprovider",
		"sethandler", "addhandler", "options", "alias":
		return true
	}
	return strings.HasPrefix(key, "wsgi")
}

// briefReason is the short reason for the usual non-WSGI directives.
func briefReason(key string) string {
	switch {
	case key == "loadmodule" || key == "loadfile":
		return "modules: not applicable"
	case key == "listen":
		return "the front end listens; wsgifcgi's FastCGI listeners are [server] listen"
	case key == "documentroot" || key == "aliasmatch" || key == "directoryindex":
		return "static files: the front end serves them"
	case key == "errorlog" || key == "customlog" || key == "transferlog" || key == "logformat" ||
		key == "loglevel" || key == "errorlogformat":
		return "logging: wsgifcgi logs to stderr, see log-level and access-log"
	case key == "order" || key == "allow" || key == "deny" || key == "satisfy":
		return "access control: the front end's job"
	case key == "allowoverride" || key == "allowoverridelist" || key == "accessfilename":
		return ".htaccess files are not read: put their directives in the <Directory>"
	case strings.HasPrefix(key, "ssl"):
		return "TLS: the front end's job"
	case strings.HasPrefix(key, "rewrite"):
		return "mod_rewrite: the front end's job; a variable it sets can be sent as a FastCGI param"
	case strings.HasPrefix(key, "proxy"):
		return "proxying: the front end's job"
	case strings.HasPrefix(key, "redirect"):
		return "redirects: the front end's job"
	case key == "scriptalias" || key == "scriptaliasmatch":
		return "CGI, not WSGI"
	case key == "setenvif" || key == "setenvifnocase" || key == "setenvifexpr" || key == "browsermatch" || key == "browsermatchnocase":
		return "conditional variables: have the front end send them as FastCGI params"
	case key == "passenv":
		return "the environ does not take wsgifcgi's own environment; %{ENV:...} still falls back to it"
	case key == "authuserfile" || key == "authgroupfile" || key == "authdbmuserfile" || key == "authdbmgroupfile" ||
		strings.HasPrefix(key, "authldap") || strings.HasPrefix(key, "authdbd"):
		return "authentication by Apache itself: the front end's job"
	}
	return "not a mod_wsgi directive"
}

func (c *converter) serverName(s *scope, n *node) {
	switch {
	case s.kind == scopeVHost:
		// read by plan
	case s.kind != scopeServer:
		c.note(n, "not allowed in %s", s.what)
	case len(n.args) == 1:
		s.tbl.set("server-name", hostOf(n.args[0]), c.src(n))
	default:
		c.note(n, "expects one name")
	}
}

// userGroup: Apache's User and Group are the embedded pool's, and the
// default of every daemon without user=/group=.
func (c *converter) userGroup(s *scope, n *node) {
	if !c.serverOnly(s, n) || !c.one(n) {
		return
	}
	if n.key == "user" && isRoot(n.args[0]) {
		c.note(n, "wsgifcgi never runs workers as root")
		return
	}
	if s.f.embedded == nil {
		s.f.embedded = newTable("[embedded]", "Apache's User and Group: embedded mode, and daemons without user=/group=.")
	}
	s.f.embedded.set(n.key, n.args[0], c.src(n))
}

func (c *converter) allowEncodedSlashes(s *scope, n *node) {
	if len(n.args) != 1 {
		c.note(n, "expects On, Off or NoDecode")
		return
	}
	var v bool
	comment := c.src(n)
	switch strings.ToLower(n.args[0]) {
	case "on":
		v, comment = true, comment+": Apache decodes %2F, wsgifcgi keeps it encoded as NoDecode does"
	case "nodecode":
		v = true
	case "off":
	default:
		c.note(n, "expects On, Off or NoDecode")
		return
	}
	if s.kind != scopeServer {
		c.note(n, "allow-encoded-slashes is server-wide in wsgifcgi; set it in [server] if every vhost may have it")
		return
	}
	s.tbl.set("allow-encoded-slashes", v, comment)
}

// auth translates AuthType, AuthName and Require where a WSGI script
// authenticates; elsewhere Apache itself does it, which is the front end's
// job (a Require without a WSGI auth script would fail every request).
func (c *converter) auth(s *scope, n *node) {
	byApache := "no WSGI auth script applies here: Apache's own authentication is the front end's job"
	switch n.key {
	case "authbasicprovider", "authdigestprovider":
		var other []string
		for _, a := range n.args {
			if !strings.EqualFold(a, "wsgi") {
				other = append(other, a)
			}
		}
		switch {
		case len(other) == len(n.args):
			c.note(n, "%s", byApache)
		case len(other) > 0:
			c.note(n, "only the wsgi provider is translated, not %s", strings.Join(other, " "))
		}
		return
	case "require":
		if len(n.args) == 0 {
			c.note(n, "expects an entity")
			return
		}
		switch kind := strings.ToLower(n.args[0]); {
		case kind == "valid-user" && len(n.args) == 1, (kind == "user" || kind == "group") && len(n.args) > 1:
			if !s.auth {
				c.note(n, "%s", byApache)
				return
			}
			line := append([]string{kind}, n.args[1:]...)
			if s.tbl == nil {
				c.contextKey(s, n, "require", nil)
				return
			}
			s.tbl.add("require", []string{strings.Join(line, " ")}, c.src(n))
		default:
			c.note(n, "access control: the front end's job")
		}
		return
	}
	if !c.one(n) {
		return
	}
	if !s.auth {
		c.note(n, "%s", byApache)
		return
	}
	if n.key == "authname" {
		c.contextKey(s, n, "auth-name", n.args[0])
		return
	}
	switch strings.ToLower(n.args[0]) {
	case "basic":
		c.contextKey(s, n, "auth-type", "Basic")
	case "digest":
		c.contextKey(s, n, "auth-type", "Digest")
	default:
		c.note(n, "only Basic and Digest have an equivalent")
	}
}

// setHandler: SetHandler wsgi-script in a <Directory> is its handler; in
// a <Location> it pairs with an Alias (see finish).
func (c *converter) setHandler(s *scope, n *node) {
	if !c.one(n) {
		return
	}
	h := strings.ToLower(n.args[0])
	if h != "wsgi-script" && h != "none" {
		c.note(n, "handler %s: not WSGI", n.args[0])
		return
	}
	switch {
	case s.tbl != nil && (s.kind == scopeDir || s.kind == scopeFiles):
		s.tbl.set("handler", h, c.src(n))
	case s.kind == scopeFiles && s.dirTbl != nil && h == "wsgi-script":
		s.dirTbl.add("extensions", s.exts, c.src(n))
	case s.kind == scopeLoc && h == "wsgi-script" && !s.tmpl:
		s.f.locHandlers = append(s.f.locHandlers, locHandler{url: s.url, n: n})
	case h == "none":
		c.note(n, "only a <Directory> handler can be reset")
	default:
		c.note(n, "in %s it has no equivalent: use WSGIScriptAlias, or a <Directory> for the scripts", s.what)
	}
}

// addHandler: AddHandler wsgi-script .ext... gives a directory extensions.
func (c *converter) addHandler(s *scope, n *node) {
	if len(n.args) < 2 {
		c.note(n, "expects a handler and extensions")
		return
	}
	if !strings.EqualFold(n.args[0], "wsgi-script") {
		c.note(n, "handler %s: not WSGI", n.args[0])
		return
	}
	var exts []string
	for _, e := range n.args[1:] {
		if e = strings.TrimLeft(e, "."); e == "" || strings.ContainsAny(e, "/\x00") {
			c.note(n, "%s is not a file extension", e)
			return
		}
		exts = append(exts, "."+e)
	}
	switch {
	case s.tbl != nil && (s.kind == scopeDir || s.kind == scopeFiles):
		s.tbl.add("extensions", exts, c.src(n))
	case s.kind == scopeFiles && s.dirTbl != nil:
		s.dirTbl.add("extensions", exts, c.src(n))
	default:
		c.note(n, "outside a <Directory> it has no equivalent: give the [[directory]] holding the scripts extensions = %s", tomlValue(exts))
	}
}

// options: ExecCGI only lets mod_wsgi run scripts, which needs no key here.
func (c *converter) options(n *node) {
	var rest []string
	for _, o := range n.args {
		if !strings.EqualFold(strings.TrimLeft(o, "+-"), "execcgi") {
			rest = append(rest, o)
		}
	}
	if len(rest) > 0 {
		c.note(n, "%s: not applicable", strings.Join(rest, " "))
	}
}
