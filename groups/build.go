package groups

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// build assembles the checked files into a Config: server settings with
// defaults, pools, per-context scopes with precomputed alias/location/
// directory lists, and the checks that span files.
func build(files []*parsedFile) (*Config, []error) {
	c := &Config{Daemons: make(map[string]*Daemon), LookupEnv: os.LookupEnv}
	var errs []error

	// Server context: [server] and [embedded] of all non-vhost files, later keys win.
	var srv rawServer
	var emb rawDaemon
	srvWhere, embFile := "", ""
	for _, f := range files {
		if f.raw.VHost != nil {
			continue
		}
		if s := f.raw.Server; s != nil {
			overlay(&srv, s)
			if s.ProcessGroup != nil {
				srvWhere = f.dec.where([]string{"server", "process-group"})
			}
		}
		if e := f.raw.Embedded; e != nil {
			overlay(&emb, e)
			embFile = f.name
		}
	}
	c.Server = serverFrom(&srv)
	c.Embedded = daemonFrom("", &emb, nil)
	c.Embedded.File = embFile

	// Daemons, unique server-wide.
	for _, f := range files {
		vhost := ""
		if f.raw.VHost != nil && f.raw.VHost.ServerName != nil {
			vhost = strings.ToLower(*f.raw.VHost.ServerName)
		}
		for _, name := range sortedKeys(f.raw.Daemon) {
			if old, ok := c.Daemons[name]; ok {
				errs = append(errs, fmt.Errorf("%s: %s: duplicate daemon name (first defined in %s)",
					f.dec.where([]string{"daemon", name}), displayKey([]string{"daemon", name}), old.File))
				continue
			}
			d := daemonFrom(name, f.raw.Daemon[name], c.Embedded)
			d.VHost, d.File = vhost, f.name
			c.Daemons[name] = d
		}
	}

	// Scopes.
	c.server = &scope{base: chain{newSettings(srv.rawContext, srvWhere)}}
	var serverFiles []*parsedFile
	for _, f := range files {
		if f.raw.VHost == nil {
			serverFiles = append(serverFiles, f)
		}
	}
	own := c.server.addContexts(serverFiles, &errs)
	c.warnShadowed(c.server.aliases)
	for _, f := range files {
		if f.raw.VHost == nil || f.raw.VHost.ServerName == nil {
			continue
		}
		rv := f.raw.VHost
		v := &VHost{ServerName: strings.ToLower(*rv.ServerName), File: f.name}
		if rv.ServerAlias != nil {
			for _, a := range *rv.ServerAlias {
				v.ServerAliases = append(v.ServerAliases, strings.ToLower(a))
			}
		}
		if rv.Port != nil {
			v.Port = int(*rv.Port)
		}
		for _, o := range c.VHosts {
			if o.ServerName == v.ServerName && o.Port == v.Port {
				errs = append(errs, fmt.Errorf("%s: vhost.server-name: %q (port %d) already served by %s",
					f.dec.where([]string{"vhost", "server-name"}), v.ServerName, v.Port, o.File))
			}
		}
		sc := &scope{vhost: v, name: v.ServerName,
			base: chain{c.server.base[0], newSettings(rv.rawContext, f.dec.where([]string{"vhost", "process-group"}))}}
		vown := sc.addContexts([]*parsedFile{f}, &errs)
		c.warnShadowed(sc.aliases) // its own: overriding an inherited one is the point
		sc.inherit(c.server)
		v.scope = sc
		c.VHosts = append(c.VHosts, v)
		c.checkGroups(sc.name, append(vown, sc.base[1]), &errs)
	}
	c.checkGroups("", append(own, c.server.base[0]), &errs)
	c.buildImports(files, &errs)
	return c, errs
}

func serverFrom(r *rawServer) Server {
	// restrict-stdin and restrict-stdout are off, as in mod_wsgi since 3.0
	// (the 2.x reference has them on); restrict-signal is still on.
	s := Server{
		SocketPrefix:       "/run/wsgifcgi/wsgi",
		SocketMode:         0o660,
		WebServerAddrs:     []string{"127.0.0.1", "::1"},
		PythonExecutable:   "python3",
		RestrictSignal:     true,
		CaseSensitivity:    true,
		LazyInitialization: true,
		AcceptMutex:        "default",
		LogLevel:           "info",
		LogFormat:          "json",
		AccessLog:          true,
		MaxConnections:     DefaultMaxConnections,
	}
	setList(&s.Listen, r.Listen)
	setStr(&s.ServerName, r.ServerName)
	if r.ServerName != nil {
		s.ServerName = strings.ToLower(s.ServerName)
	}
	setStr(&s.SocketPrefix, r.SocketPrefix)
	if r.SocketMode != nil {
		m, _ := parseOctal(*r.SocketMode)
		s.SocketMode = os.FileMode(m)
	}
	setList(&s.WebServerAddrs, r.WebServerAddrs)
	setStr(&s.PythonExecutable, r.PythonExecutable)
	setStr(&s.PythonHome, r.PythonHome)
	setList(&s.PythonPath, r.PythonPath)
	setStr(&s.PythonEggs, r.PythonEggs)
	setInt(&s.PythonOptimize, r.PythonOptimize)
	setBool(&s.RestrictEmbedded, r.RestrictEmbedded)
	setBool(&s.RestrictStdin, r.RestrictStdin)
	setBool(&s.RestrictStdout, r.RestrictStdout)
	setBool(&s.RestrictSignal, r.RestrictSignal)
	setBool(&s.CaseSensitivity, r.CaseSensitivity)
	setBool(&s.LazyInitialization, r.LazyInitialization)
	setStr(&s.AcceptMutex, r.AcceptMutex)
	setStr(&s.LogLevel, r.LogLevel)
	setStr(&s.LogFormat, r.LogFormat)
	setBool(&s.AccessLog, r.AccessLog)
	setBool(&s.AllowEncodedSlashes, r.AllowEncodedSlashes)
	setBool(&s.ChunkedRequest, r.ChunkedRequest)
	setBool(&s.TrustRemoteUser, r.TrustRemoteUser)
	setStr(&s.Metrics, r.Metrics)
	setInt(&s.MaxConnections, r.MaxConnections)
	return s
}

// daemonFrom applies mod_wsgi's defaults; an unset user/group comes from
// the embedded pool (inherit, nil for the embedded pool itself).
func daemonFrom(name string, r *rawDaemon, inherit *Daemon) *Daemon {
	d := &Daemon{
		Name:            name,
		Processes:       1,
		Threads:         15,
		DeadlockTimeout: 300 * time.Second,
		ShutdownTimeout: 5 * time.Second,
		GracefulTimeout: 15 * time.Second,
		SocketTimeout:   DefaultSocketTimeout,
		BodyBufferSize:  DefaultBodyBufferSize,
	}
	if inherit != nil {
		d.User, d.Group = inherit.User, inherit.Group
	}
	setStr(&d.User, r.User)
	setStr(&d.Group, r.Group)
	d.ProcessesSet = r.Processes != nil
	setInt(&d.Processes, r.Processes)
	setInt(&d.Threads, r.Threads)
	if r.Umask != nil {
		m, _ := parseOctal(*r.Umask)
		d.Umask, d.UmaskSet = os.FileMode(m), true
	}
	setStr(&d.Home, r.Home)
	setList(&d.PythonPath, r.PythonPath)
	setStr(&d.PythonEggs, r.PythonEggs)
	setInt(&d.StackSize, r.StackSize)
	setInt(&d.MaximumRequests, r.MaximumRequests)
	setSecs(&d.InactivityTimeout, r.InactivityTimeout)
	setSecs(&d.DeadlockTimeout, r.DeadlockTimeout)
	setSecs(&d.ShutdownTimeout, r.ShutdownTimeout)
	setSecs(&d.RequestTimeout, r.RequestTimeout)
	setSecs(&d.QueueTimeout, r.QueueTimeout)
	setSecs(&d.GracefulTimeout, r.GracefulTimeout)
	setSecs(&d.RestartInterval, r.RestartInterval)
	setSecs(&d.StartupTimeout, r.StartupTimeout)
	setStr(&d.DisplayName, r.DisplayName)
	setInt(&d.ReceiveBufferSize, r.ReceiveBufferSize)
	setInt(&d.SendBufferSize, r.SendBufferSize)
	setSecs(&d.SocketTimeout, r.SocketTimeout)
	setInt(&d.BodyBufferSize, r.BodyBufferSize)
	if r.MemoryLimit != nil {
		d.MemoryLimit = *r.MemoryLimit
	}
	if r.VirtualMemoryLimit != nil {
		d.VirtualMemoryLimit = *r.VirtualMemoryLimit
	}
	setSecs(&d.CPUTimeLimit, r.CPUTimeLimit)
	setInt(&d.CPUPriority, r.CPUPriority)
	setInt(&d.ListenBacklog, r.ListenBacklog)
	return d
}

// addContexts adds the aliases, locations and directories of files (one
// context) to s and returns their settings for the process-group checks.
// Aliases keep mod_wsgi's order: every [[script-alias]] in file order, then
// every [[script-alias-match]].
func (s *scope) addContexts(files []*parsedFile, errs *[]error) (ctxs []*settings) {
	seen := make(map[string]string) // mount -> where, for overlaps
	for _, f := range files {
		for i, r := range f.raw.ScriptAlias {
			if r.URL == nil || r.Path == nil || !strings.HasPrefix(*r.URL, "/") {
				continue // already reported
			}
			p := elem("script-alias", i)
			a := newAlias(*r.URL, *r.Path, newSettings(r.rawContext, f.dec.where(with(p, "process-group"))), f.dec.where(p))
			a.key = displayKey(p)
			if old, ok := seen[a.mount]; ok {
				*errs = append(*errs, fmt.Errorf("%s: %s: %q overlaps the script-alias at %s",
					f.dec.where(with(p, "url")), displayKey(with(p, "url")), *r.URL, old))
				continue
			}
			seen[a.mount] = a.where
			s.aliases = append(s.aliases, a)
			ctxs = append(ctxs, a.ctx)
		}
	}
	for _, f := range files {
		for i, r := range f.raw.ScriptAliasMatch {
			if f.res[i] == nil || r.Path == nil {
				continue
			}
			p := elem("script-alias-match", i)
			a := &alias{url: *r.Regex, path: *r.Path, re: f.res[i], where: f.dec.where(p), key: displayKey(p),
				ctx: newSettings(r.rawContext, f.dec.where(with(p, "process-group")))}
			s.aliases = append(s.aliases, a)
			ctxs = append(ctxs, a.ctx)
		}
	}
	for _, f := range files {
		for i, r := range f.raw.Location {
			if r.URL == nil || !strings.HasPrefix(*r.URL, "/") {
				continue
			}
			p := elem("location", i)
			l := &location{url: trimSlash(mergeSlashes(*r.URL)),
				ctx: newSettings(r.rawContext, f.dec.where(with(p, "process-group")))}
			s.locations = append(s.locations, l)
			ctxs = append(ctxs, l.ctx)
		}
		for i, r := range f.raw.Directory {
			if r.Path == nil || !filepath.IsAbs(*r.Path) {
				continue
			}
			p := elem("directory", i)
			d := &directory{path: filepath.Clean(*r.Path), where: f.dec.where(p),
				ctx: newSettings(r.rawContext, f.dec.where(with(p, "process-group")))}
			d.realDir = realDirOf(d.path)
			if r.Handler != nil {
				d.handler = *r.Handler
			}
			if r.Extensions != nil {
				for _, e := range *r.Extensions {
					d.exts = append(d.exts, "."+strings.TrimLeft(e, "."))
				}
			}
			s.dirs = append(s.dirs, d)
			ctxs = append(ctxs, d.ctx)
		}
	}
	s.sortSpecific()
	return ctxs
}

// warnShadowed warns about an alias of one context that can never match
// because an earlier one takes every path it would (first match wins): a
// mount under an earlier mount, or anything after a mount of "/".
func (c *Config) warnShadowed(aliases []*alias) {
	for j, b := range aliases {
		for _, a := range aliases[:j] {
			if a.re != nil || !a.covers(b) {
				continue
			}
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s: %q can never match: the script-alias %q at %s comes first and takes every path under it; list the longer one first",
				b.where, b.key, b.url, a.url, a.where))
			break
		}
	}
}

// covers reports whether every path b matches is matched by a (a prefix alias).
func (a *alias) covers(b *alias) bool {
	if a.mount == "" {
		return true
	}
	if b.re != nil {
		return false
	}
	return strings.HasPrefix(b.mount, a.mount+"/") || b.mount == a.mount && (!a.needSlash || b.needSlash)
}

func newAlias(url, path string, ctx *settings, where string) *alias {
	url = mergeSlashes(url)
	a := &alias{url: url, mount: trimSlash(url), ctx: ctx, where: where}
	if a.mount == "/" {
		a.mount = ""
	}
	a.needSlash = url != "/" && strings.HasSuffix(url, "/")
	a.path = filepath.Clean(path)
	fi, err := os.Stat(a.path)
	// A url with a trailing slash suggests a directory; an existing file
	// stays the file form, as in mod_wsgi (GET /trail/ runs it).
	a.dirForm = strings.HasSuffix(path, "/") || err == nil && fi.IsDir() || err != nil && a.needSlash
	if a.dirForm {
		a.realDir = realDirOf(a.path)
	}
	return a
}

// inherit appends the server context's aliases, locations and directories
// to a vhost scope: its own aliases are tried first; locations and
// directories of both apply, the vhost's winning over equally specific ones.
func (s *scope) inherit(server *scope) {
	s.aliases = append(s.aliases, server.aliases...)
	s.locations = append(append([]*location(nil), server.locations...), s.locations...)
	s.dirs = append(append([]*directory(nil), server.dirs...), s.dirs...)
	s.sortSpecific()
}

// checkGroups verifies literal process-group names of one context: an
// undefined daemon is an error; a daemon of another vhost a warning (it
// fails at request time, as mod_wsgi does).
func (c *Config) checkGroups(vhost string, ctxs []*settings, errs *[]error) {
	for _, s := range ctxs {
		if s.ProcessGroup == nil || strings.HasPrefix(*s.ProcessGroup, "%") {
			continue
		}
		name := *s.ProcessGroup
		d, ok := c.Daemons[name]
		switch {
		case !ok:
			*errs = append(*errs, fmt.Errorf("%s: process-group: daemon %q is not defined", s.where, name))
		case d.VHost != "" && d.VHost != vhost:
			from := "the server context"
			if vhost != "" {
				from = "vhost " + vhost
			}
			c.Warnings = append(c.Warnings, fmt.Sprintf("%s: process-group: daemon %q belongs to vhost %s; selecting it from %s fails with 500",
				s.where, name, d.VHost, from))
		}
	}
}

// buildImports expands [[import-script]] of every file.
func (c *Config) buildImports(files []*parsedFile, errs *[]error) {
	for _, f := range files {
		vhost := ""
		if f.raw.VHost != nil && f.raw.VHost.ServerName != nil {
			vhost = strings.ToLower(*f.raw.VHost.ServerName)
		}
		for i, r := range f.raw.ImportScript {
			if r.Path == nil || r.ProcessGroup == nil || r.ApplicationGroup == nil {
				continue
			}
			im := ImportScript{Path: *r.Path, ProcessGroup: *r.ProcessGroup, ApplicationGroup: *r.ApplicationGroup, VHost: vhost}
			if im.ProcessGroup == "%{GLOBAL}" {
				im.ProcessGroup = ""
			}
			if im.ApplicationGroup == "%{GLOBAL}" {
				im.ApplicationGroup = ""
			}
			if im.ProcessGroup == "" && c.Server.RestrictEmbedded {
				// As mod_wsgi: with embedded mode off no %{GLOBAL} interpreter
				// ever starts, so the script would load into a pool no request uses.
				p := with(elem("import-script", i), "process-group")
				c.Warnings = append(c.Warnings, fmt.Sprintf("%s: %s: %%{GLOBAL} with restrict-embedded = true: the script is not loaded",
					f.dec.where(p), displayKey(p)))
				continue
			}
			if im.ProcessGroup != "" {
				p := with(elem("import-script", i), "process-group")
				d, ok := c.Daemons[im.ProcessGroup]
				switch {
				case !ok && strings.HasPrefix(im.ProcessGroup, "%{"):
					continue // an expansion: already reported as a bad value
				case !ok:
					*errs = append(*errs, fmt.Errorf("%s: %s: daemon %q is not defined", f.dec.where(p), displayKey(p), im.ProcessGroup))
					continue
				case d.VHost != "" && vhost != "" && d.VHost != vhost:
					*errs = append(*errs, fmt.Errorf("%s: %s: daemon %q belongs to vhost %s", f.dec.where(p), displayKey(p), im.ProcessGroup, d.VHost))
					continue
				}
			}
			c.imports = append(c.imports, im)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func setStr(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

func setInt(dst *int, v *int64) {
	if v != nil {
		*dst = int(*v)
	}
}

func setSecs(dst *time.Duration, v *int64) {
	if v != nil {
		*dst = time.Duration(*v) * time.Second
	}
}

func setList(dst *[]string, v *[]string) {
	if v != nil {
		*dst = append([]string(nil), (*v)...)
	}
}
