package convert

import (
	"strings"
)

// wsgi translates one WSGI* directive.
func (c *converter) wsgi(s *scope, n *node) {
	switch n.key {
	case "wsgidaemonprocess":
		c.daemon(s, n)
	case "wsgiprocessgroup":
		if c.one(n) {
			if p := c.processGroupProblem(n.args[0]); p != "" {
				c.note(n, "%s", p)
				return
			}
			c.contextKey(s, n, "process-group", n.args[0])
		}
	case "wsgiapplicationgroup":
		if c.one(n) {
			if p := applicationGroupProblem(n.args[0]); p != "" {
				c.note(n, "%s", p)
				return
			}
			c.contextKey(s, n, "application-group", n.args[0])
		}
	case "wsgicallableobject":
		if c.one(n) {
			if p := callableProblem(n.args[0]); p != "" {
				c.note(n, "%s", p)
				return
			}
			c.contextKey(s, n, "callable-object", n.args[0])
		}
	case "wsgipassauthorization":
		c.contextFlag(s, n, "pass-authorization")
	case "wsgiscriptreloading":
		c.contextFlag(s, n, "script-reloading")
	case "wsgioutputbuffering":
		c.contextFlag(s, n, "output-buffering")
	case "wsgireloadmechanism":
		c.reloadMechanism(s, n)
	case "wsgirestrictprocess":
		if len(n.args) == 0 {
			c.note(n, "expects one or more process group names")
			return
		}
		c.contextKey(s, n, "restrict-process", append([]string(nil), n.args...))
	case "wsgiscriptalias":
		c.scriptAlias(s, n)
	case "wsgiscriptaliasmatch":
		c.scriptAliasMatch(s, n)
	case "wsgiimportscript":
		c.importScript(s, n)
	case "wsgiauthuserscript":
		c.authScript(s, n, "auth-user-script")
	case "wsgiauthgroupscript":
		c.authScript(s, n, "auth-group-script")
	case "wsgiaccessscript":
		c.authScript(s, n, "access-script")
	case "wsgichunkedrequest":
		c.serverWideFlag(s, n, "chunked-request")
	default:
		c.pythonOrServer(s, n)
	}
}

// pythonOrServer handles the directives that only the server config takes.
func (c *converter) pythonOrServer(s *scope, n *node) {
	flags := map[string]string{
		"wsgirestrictembedded":   "restrict-embedded",
		"wsgirestrictstdin":      "restrict-stdin",
		"wsgirestrictstdout":     "restrict-stdout",
		"wsgirestrictsignal":     "restrict-signal",
		"wsgicasesensitivity":    "case-sensitivity",
		"wsgilazyinitialization": "lazy-initialization",
	}
	paths := map[string]string{
		"wsgisocketprefix":     "socket-prefix",
		"wsgipythonexecutable": "python-executable",
		"wsgipythoneggs":       "python-eggs",
	}
	key, isFlag := flags[n.key]
	pathKey, isPath := paths[n.key]
	known := isFlag || isPath || n.key == "wsgipythonhome" || n.key == "wsgipythonpath" ||
		n.key == "wsgipythonoptimize" || n.key == "wsgiacceptmutex"
	if !known {
		c.note(n, "%s", wsgiReason(n.key))
		return
	}
	if !c.serverOnly(s, n) || !c.one(n) {
		return
	}
	arg := n.args[0]
	srv := c.server.main
	switch {
	case isFlag:
		c.flag(srv, n, key)
	case isPath:
		srv.set(pathKey, c.absPath(arg), c.src(n))
	case n.key == "wsgipythonhome":
		prefix, exec, two := strings.Cut(arg, ":")
		if two {
			c.note(n, "exec_prefix %s dropped: python-home takes one directory, a virtualenv works", exec)
		}
		srv.set("python-home", c.absPath(prefix), c.src(n))
	case n.key == "wsgipythonpath":
		srv.set("python-path", c.pathList(arg), c.src(n))
	case n.key == "wsgipythonoptimize":
		v, ok := intIn(arg, 0, 2)
		if !ok {
			c.note(n, "%s: want 0, 1 or 2", arg)
			return
		}
		srv.set("python-optimize", v, c.src(n))
	case n.key == "wsgiacceptmutex":
		srv.set("accept-mutex", arg, c.src(n)+" (no effect in wsgifcgi)")
	}
}

// wsgiReason explains a WSGI directive wsgifcgi has no key for.
func wsgiReason(key string) string {
	switch key {
	case "wsgipythonhashseed":
		return "no key for it: set PYTHONHASHSEED in wsgifcgi's environment"
	case "wsgipythonwarnings":
		return "no key for it: set PYTHONWARNINGS in wsgifcgi's environment"
	case "wsgidontwritebytecode":
		return "no key for it: set PYTHONDONTWRITEBYTECODE in wsgifcgi's environment"
	case "wsgiverbosedebugging":
		return "no equivalent; log-level = \"debug\" is the closest"
	case "wsgidestroyinterpreter":
		return "no equivalent: an interpreter ends with its worker process"
	case "wsgitrustedproxyheaders", "wsgitrustedproxies":
		return "no equivalent: let the front end set the CGI variables it trusts"
	case "wsgihandlerscript":
		return "no equivalent: handler scripts are not supported"
	case "wsgiapplicationgroup", "wsgiprocessgroup":
		return "bad arguments"
	}
	return "no equivalent in wsgifcgi"
}

// one checks that n has exactly one argument.
func (c *converter) one(n *node) bool {
	if len(n.args) != 1 {
		c.note(n, "expects one argument, has %d", len(n.args))
		return false
	}
	return true
}

// serverOnly: mod_wsgi takes these in the server config only.
func (c *converter) serverOnly(s *scope, n *node) bool {
	if s.kind != scopeServer {
		c.note(n, "only allowed in the server config, not in %s", s.what)
		return false
	}
	return true
}

// serverWideFlag is a flag Apache allows per vhost that wsgifcgi only has
// server-wide; elsewhere than the server config it is reported, since
// moving it would change every other vhost too.
func (c *converter) serverWideFlag(s *scope, n *node, key string) {
	if s.kind != scopeServer {
		c.note(n, "%s is server-wide in wsgifcgi; set it in [server] if every vhost may have it", key)
		return
	}
	c.flag(c.server.main, n, key)
}

func (c *converter) flag(t *table, n *node, key string) {
	v, ok := onOff(n)
	if !ok {
		c.note(n, "expects On or Off")
		return
	}
	t.set(key, v, c.src(n))
}

// contextKey sets one of the keys every context takes.
func (c *converter) contextKey(s *scope, n *node, key string, val any) {
	if s.tbl == nil {
		c.note(n, "in %s: settings for files selected by extension have no equivalent", s.what)
		return
	}
	s.tbl.set(key, val, c.src(n))
}

func (c *converter) contextFlag(s *scope, n *node, key string) {
	v, ok := onOff(n)
	if !ok {
		c.note(n, "expects On or Off")
		return
	}
	c.contextKey(s, n, key, v)
}

func (c *converter) reloadMechanism(s *scope, n *node) {
	if !c.one(n) {
		return
	}
	switch v := strings.ToLower(n.args[0]); v {
	case "module", "process":
		c.contextKey(s, n, "reload-mechanism", v)
	case "interpreter":
		c.note(n, "Interpreter is mod_wsgi 1.x and has no equivalent; Module reloads the script, Process the daemon")
	default:
		c.note(n, "%s: want Module or Process", n.args[0])
	}
}

// pathList splits a colon-separated list of directories.
func (c *converter) pathList(arg string) []string {
	var out []string
	for _, p := range strings.Split(arg, ":") {
		if p != "" {
			out = append(out, c.absPath(p))
		}
	}
	return out
}

// authScript is WSGIAuthUserScript, WSGIAuthGroupScript, WSGIAccessScript.
func (c *converter) authScript(s *scope, n *node, key string) {
	if len(n.args) == 0 {
		c.note(n, "expects a script path")
		return
	}
	for _, o := range n.args[1:] {
		k, v, _ := strings.Cut(o, "=")
		switch {
		case strings.EqualFold(k, "application-group") && v == "%{GLOBAL}":
		case strings.EqualFold(k, "application-group"):
			// One key for the three directives of a context, as the
			// interpreter they share in practice.
			c.contextKey(s, n, "auth-application-group", v)
		default:
			c.note(n, "option %s: no equivalent", o)
		}
	}
	c.contextKey(s, n, key, c.absPath(n.args[0]))
}
