package groups

import (
	"path/filepath"
	"strings"
)

// ConfiguredPath is a script or directory of scripts the configuration
// names, with the process group whose workers open it.
type ConfiguredPath struct {
	Path  string
	Dir   bool   // a directory whose scripts the workers open
	Where string // FILE:LINE of the entry
	// ProcessGroup is the daemon name, "" for [embedded]; Known is false
	// when it depends on the request (%{ENV:...}).
	ProcessGroup string
	Known        bool
}

// ConfiguredPaths lists every configured script and script directory:
// aliases (the directory before the first $N of a script-alias-match),
// [[directory]] handlers, import scripts and auth scripts, each once per
// process group, in configuration order. It is for checks at start (can
// the workers read them?); routing does not use it.
func (c *Config) ConfiguredPaths() []ConfiguredPath {
	var out []ConfiguredPath
	seen := map[ConfiguredPath]bool{}
	add := func(p ConfiguredPath) {
		key := p
		key.Where = ""
		if p.Path == "" || !filepath.IsAbs(p.Path) || seen[key] {
			return
		}
		seen[key] = true
		out = append(out, p)
	}
	group := func(ctx chain) (string, bool) {
		g := ctx.str(getProcGroup, "%{GLOBAL}")
		if g == "%{GLOBAL}" {
			return "", true
		}
		return g, !strings.HasPrefix(g, "%{")
	}
	auth := func(ctx chain, where string) {
		// Auth scripts run in the [embedded] pool.
		for _, get := range []func(*rawContext) *string{getAuthUser, getAuthGroup, getAccessScript} {
			add(ConfiguredPath{Path: ctx.str(get, ""), Where: where, Known: true})
		}
	}
	scopes := []*scope{c.server}
	for _, v := range c.VHosts {
		scopes = append(scopes, v.scope)
	}
	for _, sc := range scopes {
		auth(sc.base, "")
		for _, a := range sc.aliases {
			ctx := append(append(chain(nil), sc.base...), a.ctx)
			g, known := group(ctx)
			p := ConfiguredPath{Path: a.path, Dir: a.dirForm, Where: a.where, ProcessGroup: g, Known: known}
			if a.re != nil {
				// A template: the fixed directory before the first $N.
				i := strings.IndexByte(a.path, '$')
				if i < 0 {
					p.Dir = false
				} else {
					p.Path, p.Dir = filepath.Dir(a.path[:i+1]), true
				}
			}
			add(p)
			auth(ctx, a.where)
		}
		for _, d := range sc.dirs {
			ctx := append(append(chain(nil), sc.base...), d.ctx)
			if d.handler == "wsgi-script" || len(d.exts) > 0 {
				g, known := group(ctx)
				add(ConfiguredPath{Path: d.path, Dir: true, Where: d.where, ProcessGroup: g, Known: known})
			}
			auth(ctx, d.where)
		}
	}
	for _, is := range c.imports {
		add(ConfiguredPath{Path: is.Path, Where: "import-script " + is.Path, ProcessGroup: is.ProcessGroup, Known: true})
	}
	return out
}
