package groups

import (
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Value checks of one file's raw tables. They run per file, where positions
// are known, and normalise enums in place (reload-mechanism lower-case,
// auth-type "Basic"/"Digest") so later stages need not re-check.

var (
	envRefRe   = regexp.MustCompile(`^%\{ENV:([^}]+)\}$`)
	identRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	logLevels  = []string{"trace", "debug", "info", "warn", "error", "fatal", "panic", "disabled"}
	logFormats = []string{"json", "console"}
)

// checkAppGroup validates a WSGIApplicationGroup value.
func (d *fileDecoder) checkAppGroup(p *string, path []string) {
	if p == nil {
		return
	}
	switch v := *p; {
	case v == "":
		d.failf(path, "must not be empty (use %%{GLOBAL} for the first interpreter)")
	case strings.HasPrefix(v, "%{") && !envRefRe.MatchString(v) &&
		v != "%{GLOBAL}" && v != "%{SERVER}" && v != "%{RESOURCE}" && v != "%{HOST}":
		d.failf(path, "%q: want %%{GLOBAL}, %%{SERVER}, %%{RESOURCE}, %%{HOST}, %%{ENV:name} or a name", v)
	}
}

func (d *fileDecoder) checkContext(c *rawContext, path []string) {
	d.checkAppGroup(c.ApplicationGroup, with(path, "application-group"))
	d.checkAppGroup(c.AuthApplicationGroup, with(path, "auth-application-group"))
	if c.ProcessGroup != nil {
		v := *c.ProcessGroup
		switch {
		case v == "":
			d.failf(with(path, "process-group"), "must not be empty (use %%{GLOBAL} for the embedded pool)")
		case strings.HasPrefix(v, "%") && v != "%{GLOBAL}" && !envRefRe.MatchString(v):
			d.failf(with(path, "process-group"), "%q: want %%{GLOBAL}, %%{ENV:name} or a daemon name", v)
		}
	}
	if c.CallableObject != nil && !envRefRe.MatchString(*c.CallableObject) && !identRe.MatchString(*c.CallableObject) {
		d.failf(with(path, "callable-object"), "%q is not a Python name or %%{ENV:name}", *c.CallableObject)
	}
	if c.ReloadMechanism != nil {
		v := strings.ToLower(*c.ReloadMechanism)
		if v != "module" && v != "process" {
			d.failf(with(path, "reload-mechanism"), "%q: want \"module\" or \"process\"", *c.ReloadMechanism)
		}
		c.ReloadMechanism = &v
	}
	if c.RestrictProcess != nil {
		for i, n := range *c.RestrictProcess {
			if n == "" {
				d.failf(with(path, "restrict-process", strconv.Itoa(i)), "empty process group name")
			}
		}
	}
	for k, v := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			d.failf(with(path, "env", k), "invalid variable name %q", k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			d.failf(with(path, "env", k), "value contains a NUL byte")
		}
	}
	if c.AuthType != nil {
		switch strings.ToLower(*c.AuthType) {
		case "basic":
			*c.AuthType = "Basic"
		case "digest":
			*c.AuthType = "Digest"
		default:
			d.failf(with(path, "auth-type"), "%q: want \"Basic\" or \"Digest\"", *c.AuthType)
		}
	}
	if c.Require != nil {
		for i, r := range *c.Require {
			f := strings.Fields(r)
			switch {
			case len(f) == 1 && f[0] == "valid-user":
			case len(f) > 1 && (f[0] == "user" || f[0] == "group"):
			default:
				d.failf(with(path, "require", strconv.Itoa(i)), "%q: want \"valid-user\", \"user NAME...\" or \"group NAME...\"", r)
			}
		}
	}
	d.checkAbs(c.AuthUserScript, with(path, "auth-user-script"))
	d.checkAbs(c.AuthGroupScript, with(path, "auth-group-script"))
	d.checkAbs(c.AccessScript, with(path, "access-script"))
}

func (d *fileDecoder) checkAbs(p *string, path []string) {
	if p != nil && !filepath.IsAbs(*p) {
		d.failf(path, "%q is not an absolute path", *p)
	}
}

func (d *fileDecoder) checkEnum(v *string, path []string, allowed []string) {
	if v == nil {
		return
	}
	l := strings.ToLower(*v)
	for _, a := range allowed {
		if l == a {
			*v = l
			return
		}
	}
	d.failf(path, "%q: want one of %s", *v, strings.Join(allowed, ", "))
}

func (d *fileDecoder) checkServer(s *rawServer, path []string) {
	d.checkContext(&s.rawContext, path)
	if s.Listen != nil {
		for i, l := range *s.Listen {
			if err := checkListen(l); err != "" {
				d.failf(with(path, "listen", strconv.Itoa(i)), "%q: %s", l, err)
			}
		}
	}
	if s.SocketMode != nil {
		if _, ok := parseOctal(*s.SocketMode); !ok {
			d.failf(with(path, "socket-mode"), "%q is not an octal mode like \"0660\"", *s.SocketMode)
		}
	}
	if s.WebServerAddrs != nil {
		for i, a := range *s.WebServerAddrs {
			if _, _, err := net.ParseCIDR(a); net.ParseIP(a) == nil && err != nil {
				d.failf(with(path, "web-server-addrs", strconv.Itoa(i)), "%q is not an IP address or CIDR prefix", a)
			}
		}
	}
	if s.PythonOptimize != nil && (*s.PythonOptimize < 0 || *s.PythonOptimize > 2) {
		d.failf(with(path, "python-optimize"), "%d: want 0, 1 or 2", *s.PythonOptimize)
	}
	if s.PythonExecutable != nil && *s.PythonExecutable == "" {
		d.failf(with(path, "python-executable"), "must not be empty")
	}
	if s.Metrics != nil && *s.Metrics != "" {
		if kind, _, _ := strings.Cut(*s.Metrics, ":"); kind != "tcp" && kind != "unix" {
			d.failf(with(path, "metrics"), "%q: want tcp:HOST:PORT or unix:/path", *s.Metrics)
		} else if err := checkListen(*s.Metrics); err != "" {
			d.failf(with(path, "metrics"), "%q: %s", *s.Metrics, err)
		}
	}
	if s.MaxConnections != nil && (*s.MaxConnections < 1 || *s.MaxConnections > maxConnectionsLimit) {
		d.failf(with(path, "max-connections"), "%d: want 1..%d", *s.MaxConnections, maxConnectionsLimit)
	}
	d.checkEnum(s.LogLevel, with(path, "log-level"), logLevels)
	d.checkEnum(s.LogFormat, with(path, "log-format"), logFormats)
}

// maxConnectionsLimit is Linux's default fs.nr_open, the most descriptors
// a process may have: beyond it max-connections could never be reached.
const maxConnectionsLimit = 1 << 20

// checkListen validates unix:/path, tcp:HOST:PORT and fd:N; "" means fine.
func checkListen(l string) string {
	kind, rest, _ := strings.Cut(l, ":")
	switch kind {
	case "unix":
		if !filepath.IsAbs(rest) {
			return "unix: needs an absolute socket path"
		}
	case "tcp":
		_, port, err := net.SplitHostPort(rest)
		if err != nil {
			return "tcp: needs HOST:PORT"
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "tcp: port must be 1..65535"
		}
	case "fd":
		if n, err := strconv.Atoi(rest); err != nil || n < 0 {
			return "fd: needs a file descriptor number"
		}
	default:
		return "want unix:/path, tcp:HOST:PORT or fd:N"
	}
	return ""
}

// parseOctal reads a permission mask such as "0022" or "660".
func parseOctal(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o777 {
		return 0, false
	}
	return uint32(n), true
}

func (d *fileDecoder) checkDaemon(dm *rawDaemon, path []string) {
	for _, u := range []struct {
		v   *string
		key string
	}{{dm.User, "user"}, {dm.Group, "group"}} {
		if u.v == nil {
			continue
		}
		switch v := *u.v; {
		case v == "":
			d.failf(with(path, u.key), "must not be empty")
		case strings.HasPrefix(v, "#"):
			if n, err := strconv.ParseUint(v[1:], 10, 32); err != nil {
				d.failf(with(path, u.key), "%q: want a name or #ID", v)
			} else if n == 0 && u.key == "user" {
				d.failf(with(path, u.key), "workers never run as root")
			}
		case v == "root" && u.key == "user":
			d.failf(with(path, u.key), "workers never run as root")
		}
	}
	for _, n := range []struct {
		v   *int64
		key string
		min int64
	}{
		{dm.Processes, "processes", 1}, {dm.Threads, "threads", 1},
		{dm.StackSize, "stack-size", 0}, {dm.MaximumRequests, "maximum-requests", 0},
		{dm.InactivityTimeout, "inactivity-timeout", 0}, {dm.DeadlockTimeout, "deadlock-timeout", 0},
		{dm.ShutdownTimeout, "shutdown-timeout", 0}, {dm.RequestTimeout, "request-timeout", 0},
		{dm.QueueTimeout, "queue-timeout", 0}, {dm.GracefulTimeout, "graceful-timeout", 0},
		{dm.RestartInterval, "restart-interval", 0}, {dm.StartupTimeout, "startup-timeout", 0},
		{dm.ReceiveBufferSize, "receive-buffer-size", 0}, {dm.SendBufferSize, "send-buffer-size", 0},
		{dm.MemoryLimit, "memory-limit", 0}, {dm.VirtualMemoryLimit, "virtual-memory-limit", 0},
		{dm.CPUTimeLimit, "cpu-time-limit", 0}, {dm.ListenBacklog, "listen-backlog", 0},
		{dm.SocketTimeout, "socket-timeout", 1}, {dm.BodyBufferSize, "body-buffer-size", 0},
	} {
		if n.v != nil && *n.v < n.min {
			d.failf(with(path, n.key), "%d: must be at least %d", *n.v, n.min)
		}
	}
	if dm.CPUPriority != nil && (*dm.CPUPriority < -20 || *dm.CPUPriority > 19) {
		d.failf(with(path, "cpu-priority"), "%d: want -20..19", *dm.CPUPriority)
	}
	if dm.Umask != nil {
		if _, ok := parseOctal(*dm.Umask); !ok {
			d.failf(with(path, "umask"), "%q is not an octal mask like \"0022\"", *dm.Umask)
		}
	}
	d.checkAbs(dm.Home, with(path, "home"))
}

func (d *fileDecoder) checkVHost(v *rawVHost, path []string) {
	d.checkContext(&v.rawContext, path)
	if v.ServerName == nil || *v.ServerName == "" {
		d.failf(with(path, "server-name"), "required in a [vhost]")
	}
	if v.Port != nil && (*v.Port < 0 || *v.Port > 65535) {
		d.failf(with(path, "port"), "%d: want 0..65535", *v.Port)
	}
}

func (d *fileDecoder) checkAlias(a *rawAlias, path []string) {
	d.checkContext(&a.rawContext, path)
	if a.URL == nil || !strings.HasPrefix(*a.URL, "/") {
		d.failf(with(path, "url"), "required, a URL path starting with /")
	}
	if a.Path == nil {
		d.failf(with(path, "path"), "required")
	} else {
		d.checkAbs(a.Path, with(path, "path"))
	}
}

// checkAliasMatch compiles the regex and returns it (nil on error).
func (d *fileDecoder) checkAliasMatch(a *rawAliasMatch, path []string) *regexp.Regexp {
	d.checkContext(&a.rawContext, path)
	var re *regexp.Regexp
	if a.Regex == nil {
		d.failf(with(path, "regex"), "required")
	} else if r, err := regexp.Compile(*a.Regex); err != nil {
		d.failf(with(path, "regex"), "%v", err)
	} else {
		re = r
	}
	if a.Path == nil {
		d.failf(with(path, "path"), "required")
		return nil
	}
	d.checkAbs(a.Path, with(path, "path"))
	if re != nil {
		for _, g := range refRe.FindAllStringSubmatch(*a.Path, -1) {
			if n, _ := strconv.Atoi(g[1]); n > re.NumSubexp() {
				d.failf(with(path, "path"), "$%d but the regex has %d groups", n, re.NumSubexp())
			}
		}
	}
	return re
}

func (d *fileDecoder) checkLocation(l *rawLocation, path []string) {
	d.checkContext(&l.rawContext, path)
	if l.URL == nil || !strings.HasPrefix(*l.URL, "/") {
		d.failf(with(path, "url"), "required, a URL path starting with /")
	}
}

func (d *fileDecoder) checkDirectory(dir *rawDirectory, path []string) {
	d.checkContext(&dir.rawContext, path)
	if dir.Path == nil {
		d.failf(with(path, "path"), "required")
	} else {
		d.checkAbs(dir.Path, with(path, "path"))
	}
	d.checkEnum(dir.Handler, with(path, "handler"), []string{"wsgi-script", "none"})
	if dir.Extensions != nil {
		for i, e := range *dir.Extensions {
			if strings.Trim(e, ".") == "" || strings.ContainsAny(e, "/\x00") {
				d.failf(with(path, "extensions", strconv.Itoa(i)), "%q is not a file extension", e)
			}
		}
	}
}

func (d *fileDecoder) checkImport(im *rawImport, path []string) {
	if im.Path == nil {
		d.failf(with(path, "path"), "required")
	} else {
		d.checkAbs(im.Path, with(path, "path"))
	}
	if im.ProcessGroup == nil {
		d.failf(with(path, "process-group"), "required (%%{GLOBAL} or a daemon name)")
	} else if v := *im.ProcessGroup; v == "" || strings.HasPrefix(v, "%") && v != "%{GLOBAL}" {
		d.failf(with(path, "process-group"), "%q: want %%{GLOBAL} or a daemon name", v)
	}
	if im.ApplicationGroup == nil {
		d.failf(with(path, "application-group"), "required (%%{GLOBAL} or a name)")
	} else if v := *im.ApplicationGroup; v == "" || strings.HasPrefix(v, "%") && v != "%{GLOBAL}" {
		d.failf(with(path, "application-group"), "%q: want %%{GLOBAL} or a name", v)
	}
}
