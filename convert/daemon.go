package convert

import (
	"math"
	"strings"
)

// daemonInts are the integer options of WSGIDaemonProcess and their bounds.
var daemonInts = map[string][2]int64{
	"processes": {1, math.MaxInt32}, "threads": {1, math.MaxInt32},
	"stack-size": {0, math.MaxInt64}, "maximum-requests": {0, math.MaxInt64},
	"inactivity-timeout": {0, math.MaxInt32}, "deadlock-timeout": {0, math.MaxInt32},
	"shutdown-timeout": {0, math.MaxInt32}, "request-timeout": {0, math.MaxInt32},
	"queue-timeout": {0, math.MaxInt32}, "graceful-timeout": {0, math.MaxInt32},
	"restart-interval": {0, math.MaxInt32}, "startup-timeout": {0, math.MaxInt32},
	"receive-buffer-size": {0, math.MaxInt32}, "send-buffer-size": {0, math.MaxInt32},
	"memory-limit": {0, math.MaxInt64}, "virtual-memory-limit": {0, math.MaxInt64},
	"cpu-time-limit": {0, math.MaxInt32}, "listen-backlog": {0, math.MaxInt32},
	"cpu-priority": {-20, 19}, "socket-timeout": {1, math.MaxInt32},
}

// daemon is WSGIDaemonProcess NAME options... -> [daemon.NAME].
func (c *converter) daemon(s *scope, n *node) {
	if !c.topLevel(s, n) {
		return
	}
	if len(n.args) == 0 || !validDaemonName(n.args[0]) {
		c.note(n, "expects a daemon name that does not start with %%")
		return
	}
	name := n.args[0]
	if o := c.daemons[name]; o.n != n {
		c.note(n, "a daemon process group %s is already defined at %s; names are unique server-wide", name, c.at(o.n))
		return
	}
	t := newTable("[daemon."+tomlKey(name)+"]", "WSGIDaemonProcess "+name+" at "+c.at(n))
	t.always = true // the table alone defines the daemon
	for _, opt := range n.args[1:] {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			c.note(n, "option %s: expected name=value", opt)
			continue
		}
		if problem := c.daemonOption(t, strings.ToLower(k), v); problem != "" {
			c.note(n, "option %s: %s", opt, problem)
		}
	}
	s.f.daemons = append(s.f.daemons, t)
}

// daemonOption sets one option; the result is why it could not be.
func (c *converter) daemonOption(t *table, k, v string) string {
	if b, ok := daemonInts[k]; ok {
		i, ok := intIn(v, b[0], b[1])
		if !ok {
			return "not an integer in the range wsgifcgi accepts"
		}
		t.set(k, i, "")
		return ""
	}
	switch k {
	case "user", "group":
		if v == "" {
			return "empty"
		}
		if k == "user" && isRoot(v) {
			return "wsgifcgi never runs workers as root"
		}
		t.set(k, v, "")
	case "umask":
		if !octalMask(v) {
			return "not an octal mask like 0022"
		}
		t.set(k, v, "")
	case "home", "python-eggs":
		t.set(k, c.absPath(v), "")
	case "python-path":
		t.set(k, c.pathList(v), "")
	case "display-name":
		t.set(k, v, "")
	case "python-home":
		return "no per-daemon Python: [server] python-home applies to every pool"
	default:
		return "no equivalent in wsgifcgi"
	}
	return ""
}
