package convert

import (
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Value checks mirror groups' validation, so that what is written loads;
// a value groups would refuse becomes a note instead.

var (
	envRefRe = regexp.MustCompile(`^%\{ENV:[^}]+\}$`)
	identRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// onOff reads the single On|Off argument of a flag directive.
func onOff(n *node) (bool, bool) {
	if len(n.args) != 1 {
		return false, false
	}
	switch strings.ToLower(n.args[0]) {
	case "on":
		return true, true
	case "off":
		return false, true
	}
	return false, false
}

// processGroupProblem says why v cannot be a process-group ("" if it can).
func (c *converter) processGroupProblem(v string) string {
	switch {
	case v == "":
		return "empty process group name"
	case v == "%{GLOBAL}" || envRefRe.MatchString(v):
		return ""
	case strings.HasPrefix(v, "%"):
		return v + ": want %{GLOBAL}, %{ENV:name} or a daemon name"
	}
	if _, ok := c.daemons[v]; !ok {
		return "no WSGIDaemonProcess " + v + " is defined"
	}
	return ""
}

// applicationGroupProblem says why v cannot be an application-group.
func applicationGroupProblem(v string) string {
	switch {
	case v == "":
		return "empty application group name (%{GLOBAL} is the first interpreter)"
	case !strings.HasPrefix(v, "%{"), envRefRe.MatchString(v):
		return ""
	case v == "%{GLOBAL}" || v == "%{SERVER}" || v == "%{RESOURCE}" || v == "%{HOST}":
		return ""
	}
	return v + ": want %{GLOBAL}, %{SERVER}, %{RESOURCE}, %{HOST}, %{ENV:name} or a name"
}

func callableProblem(v string) string {
	if identRe.MatchString(v) || envRefRe.MatchString(v) {
		return ""
	}
	return v + " is not a Python name or %{ENV:name}"
}

// intIn parses an integer option within [lo, hi].
func intIn(s string, lo, hi int64) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= lo && v <= hi
}

// octalMask checks a umask such as "0022".
func octalMask(s string) bool {
	v, err := strconv.ParseUint(s, 8, 32)
	return err == nil && v <= 0o777
}

// isRoot: mod_wsgi and wsgifcgi both refuse to run an application as root.
func isRoot(user string) bool { return user == "root" || user == "#0" }

// mountOf is the SCRIPT_NAME a WSGIScriptAlias URL mounts at, as groups
// computes it: slashes merged, no trailing slash, "" for the root.
func mountOf(url string) string {
	for strings.Contains(url, "//") {
		url = strings.ReplaceAll(url, "//", "/")
	}
	return strings.TrimRight(url, "/")
}

// isDir reports whether path is a directory on this machine.
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}
