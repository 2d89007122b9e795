package groups

import (
	"sort"
	"strings"
)

// scope is everything precomputed for one answering context: the server
// context, or one vhost (which inherits the server context's entries).
type scope struct {
	vhost     *VHost // nil: the server context
	name      string // the vhost's server-name; "" for the server context
	base      chain  // server settings (, vhost settings)
	aliases   []*alias
	locations []*location  // least specific (shortest) first
	dirs      []*directory // least specific (shortest) first
}

// location is a [[location]]: context keys for a URL prefix.
type location struct {
	url string // slashes merged, no trailing slash ("" is the root)
	ctx *settings
}

// matches is prefix matching at a "/" boundary, like script-alias.
func (l *location) matches(path string) bool {
	return strings.HasPrefix(path, l.url) && (len(path) == len(l.url) || path[len(l.url)] == '/')
}

// directory is a [[directory]]: context keys for scripts under path, and
// optionally a handler that runs the front end's SCRIPT_FILENAME.
type directory struct {
	path    string // clean, absolute
	realDir string // path with symlinks resolved at load ("" if missing)
	handler string // "", "wsgi-script" or "none"
	exts    []string
	ctx     *settings
	where   string
}

// contains reports whether file (clean) is under the directory, spelled
// either as configured or with its symlinks resolved.
func (d *directory) contains(file string) bool {
	return inside(file, d.path) || d.realDir != "" && inside(file, d.realDir)
}

// sortSpecific orders locations and directories by specificity; the sort
// is stable so, at equal length, later entries (the vhost's) win.
func (s *scope) sortSpecific() {
	sort.SliceStable(s.locations, func(i, j int) bool { return len(s.locations[i].url) < len(s.locations[j].url) })
	sort.SliceStable(s.dirs, func(i, j int) bool { return len(s.dirs[i].path) < len(s.dirs[j].path) })
}

// trimSlash drops trailing slashes, keeping "/" itself as "".
func trimSlash(p string) string { return strings.TrimRight(p, "/") }

// scopeFor picks the vhost: SERVER_NAME, else the host of HTTP_HOST, against
// server-name and server-alias (and port when set), case-insensitively.
// No match: the server context.
func (c *Config) scopeFor(p Params) *scope {
	name, _ := p.Get("SERVER_NAME")
	if name == "" {
		h, _ := p.Get("HTTP_HOST")
		name, _ = splitHost(h)
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(c.VHosts) == 0 {
		return c.server
	}
	port := -1
	for _, v := range c.VHosts {
		if v.Port != 0 {
			if port == -1 {
				port = atoiOr(p, "SERVER_PORT")
			}
			if port != v.Port {
				continue
			}
		}
		if strings.EqualFold(name, v.ServerName) {
			return v.scope
		}
		for _, a := range v.ServerAliases {
			if strings.EqualFold(name, a) {
				return v.scope
			}
		}
	}
	return c.server
}

func atoiOr(p Params, name string) int {
	s, _ := p.Get(name)
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || n > 65535 {
			return 0
		}
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// splitHost splits a Host header into host and port ("" if absent); it
// understands "[v6]:port".
func splitHost(h string) (host, port string) {
	if strings.HasPrefix(h, "[") {
		if i := strings.IndexByte(h, ']'); i > 0 {
			host, rest := h[1:i], h[i+1:]
			if strings.HasPrefix(rest, ":") {
				return host, rest[1:]
			}
			return host, ""
		}
		return h, ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h[:i], ':') < 0 {
		return h[:i], h[i+1:]
	}
	return h, ""
}
