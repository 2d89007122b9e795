package groups

import (
	"path/filepath"
	"strings"
)

// Route maps a request to its script, groups and context settings. The
// error, when not nil, is a *RouteError carrying the HTTP status.
func (c *Config) Route(p Params) (*Route, error) {
	r, rerr := c.route(p, true)
	if rerr != nil {
		return nil, rerr
	}
	return r, nil
}

// Access resolves only the context settings (access control above all) of
// a request that runs no script: an authorizer request may protect a static
// file the front end serves. A URL without an alias gets the contexts of its
// vhost, locations and of the directories holding the SCRIPT_FILENAME the
// front end sent; no process group is selected.
func (c *Config) Access(p Params) (*Route, error) {
	r, rerr := c.route(p, false)
	if rerr != nil {
		return nil, rerr
	}
	return r, nil
}

func (c *Config) route(p Params, runScript bool) (*Route, *RouteError) {
	sc := c.scopeFor(p)
	path, rerr := requestPath(p, c.Server.AllowEncodedSlashes)
	if rerr != nil {
		return nil, rerr
	}
	var t target
	found := false
	for _, a := range sc.aliases {
		var ok bool
		if t, ok, rerr = a.resolve(path); rerr != nil {
			return nil, rerr
		} else if ok {
			found = true
			break
		}
	}
	if !found {
		if t, rerr = sc.handlerScript(p, path, c.Server.CaseSensitivity); rerr != nil {
			if runScript || rerr.Status != 404 {
				return nil, rerr
			}
			t = target{scriptName: path}
			if f, ok := p.Get("SCRIPT_FILENAME"); ok && filepath.IsAbs(f) {
				t.file = filepath.Clean(f)
			}
		}
	}

	// The contexts, least specific first: server, vhost, alias, locations, directories.
	var buf [16]*settings
	ctx := chain(append(buf[:0], sc.base...))
	if t.alias != nil {
		ctx = append(ctx, t.alias.ctx)
	}
	for _, l := range sc.locations {
		if l.matches(path) {
			ctx = append(ctx, l.ctx)
		}
	}
	for _, d := range sc.dirs {
		if d.contains(t.file) {
			ctx = append(ctx, d.ctx)
		}
	}

	req := newRequest(c, sc, p, ctx)
	req.scriptName = t.scriptName
	rt := &Route{
		VHost:             sc.name,
		ScriptFilename:    t.file,
		ScriptMTime:       t.mtime,
		ScriptName:        t.scriptName,
		PathInfo:          t.pathInfo,
		CallableObject:    req.callableObject(ctx.str(getCallable, "application")),
		ScriptReloading:   ctx.flag(getReloading, true),
		PassAuthorization: ctx.flag(getPassAuth, false),
		OutputBuffering:   ctx.flag(getOutBuf, false),
		Env:               ctx.mergedEnv(),
		Auth: Auth{
			Type:         ctx.str(getAuthType, ""),
			Name:         ctx.str(getAuthName, ""),
			Require:      ctx.list(getRequire),
			UserScript:   ctx.str(getAuthUser, ""),
			GroupScript:  ctx.str(getAuthGroup, ""),
			AccessScript: ctx.str(getAccessScript, ""),
		},
	}
	if a := &rt.Auth; a.UserScript != "" || a.GroupScript != "" || a.AccessScript != "" {
		a.ApplicationGroup = req.applicationGroup(ctx.str(getAuthAppGroup, "%{GLOBAL}"))
	}
	if !runScript {
		return rt, nil
	}
	if rerr := c.selectGroup(rt, sc, &req, ctx); rerr != nil {
		return nil, rerr
	}
	rt.ApplicationGroup = req.applicationGroup(ctx.str(getAppGroup, "%{RESOURCE}"))
	return rt, nil
}

// selectGroup expands process-group and applies mod_wsgi's checks:
// restrict-process, daemons of another vhost, restrict-embedded.
func (c *Config) selectGroup(rt *Route, sc *scope, req *request, ctx chain) *RouteError {
	name := req.processGroup(ctx.str(getProcGroup, "%{GLOBAL}"))
	if allowed := ctx.list(getRestrict); len(allowed) > 0 && !restrictAllows(allowed, name) {
		return &RouteError{500, "process group " + groupLabel(name) + " is not allowed here (restrict-process " + strings.Join(allowed, " ") + ")"}
	}
	rt.ProcessGroup = name
	if name == "" {
		if c.Server.RestrictEmbedded {
			return &RouteError{500, "embedded mode is restricted (restrict-embedded): no process-group selected for " + rt.ScriptFilename}
		}
		rt.Daemon = c.Embedded
		rt.ReloadMechanism = "module" // "process" never applies to embedded mode
		return nil
	}
	d, ok := c.Daemons[name]
	if !ok {
		return &RouteError{500, "process group " + groupLabel(name) + " is not defined"}
	}
	if d.VHost != "" && d.VHost != sc.name {
		return &RouteError{500, "process group " + groupLabel(name) + " belongs to vhost " + d.VHost + " and cannot be selected from " + scopeLabel(sc)}
	}
	rt.Daemon = d
	rt.ReloadMechanism = ctx.str(getReloadMech, "process")
	return nil
}

// restrictAllows: the embedded pool may be listed as "%{GLOBAL}" (or "").
func restrictAllows(allowed []string, name string) bool {
	for _, a := range allowed {
		if a == name || name == "" && a == "%{GLOBAL}" {
			return true
		}
	}
	return false
}

func groupLabel(name string) string {
	if name == "" {
		return "%{GLOBAL}"
	}
	return "\"" + name + "\""
}

func scopeLabel(sc *scope) string {
	if sc.name == "" {
		return "the server context"
	}
	return "vhost " + sc.name
}
