package groups

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const routeConf = `
[daemon.default]
[daemon."bob:1"]
[daemon."bob:2"]

[[script-alias]]
url = "/app"
path = "$D/srv/app.wsgi"

[[script-alias]]
url = "/wsgi/"
path = "$D/srv/scripts/"

[[script-alias-match]]
regex = "^/m/([^/]+)"
path = "$D/srv/scripts/$1.wsgi"

[[directory]]
path = "$D/home/bob/public_html"
extensions = [".wsgi"]
restrict-process = ["bob:1", "bob:2"]
env = { PROCESS_GROUP = "bob:1" }
process-group = "%{ENV:PROCESS_GROUP}"
`

func routeFixture(t *testing.T) (*Config, string) {
	t.Helper()
	c, dir := loadTree(t, map[string]string{"00.toml": routeConf},
		"srv/app.wsgi", "srv/secret.wsgi", "srv/scripts/hello.wsgi", "srv/scripts/sub/x",
		"home/bob/public_html/blog.wsgi", "home/bob/public_html/x.txt", "home/bob/public_html/dir.wsgi/x")
	for link, to := range map[string]string{
		"srv/scripts/evil.wsgi":          "../secret.wsgi",
		"srv/scripts/ok-link.wsgi":       "hello.wsgi",
		"home/bob/public_html/esc.wsgi":  filepath.Join(dir, "srv/secret.wsgi"),
		"home/bob/public_html/link.wsgi": "blog.wsgi",
	} {
		if err := os.Symlink(to, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return c, dir
}

func TestRoutePaths(t *testing.T) {
	c, dir := routeFixture(t)
	bob := dir + "/home/bob/public_html"
	tests := []struct {
		name   string
		p      params
		status int
		file   string // relative to dir
		sn, pi string
	}{
		{"file alias", params{"REQUEST_URI": "/app"}, 0, "srv/app.wsgi", "/app", ""},
		{"trailing slash kept", params{"REQUEST_URI": "/app/"}, 0, "srv/app.wsgi", "/app", "/"},
		{"slashes merged", params{"REQUEST_URI": "//app///x//y/"}, 0, "srv/app.wsgi", "/app", "/x/y/"},
		{"query dropped", params{"REQUEST_URI": "/app/q?x=/y#f"}, 0, "srv/app.wsgi", "/app", "/q"},
		{"decoded", params{"REQUEST_URI": "/a%70p/x%20y"}, 0, "srv/app.wsgi", "/app", "/x y"},
		{"absolute form", params{"REQUEST_URI": "http://h.example/app/x"}, 0, "srv/app.wsgi", "/app", "/x"},
		{"dot segments", params{"REQUEST_URI": "/wsgi/../app/./x"}, 0, "srv/app.wsgi", "/app", "/x"},
		{"no request uri", params{"SCRIPT_NAME": "/app", "PATH_INFO": "/p q"}, 0, "srv/app.wsgi", "/app", "/p q"},
		{"boundary", params{"REQUEST_URI": "/appx"}, 404, "", "", ""},
		{"encoded slash", params{"REQUEST_URI": "/app/a%2Fb"}, 404, "", "", ""},
		{"bad escape", params{"REQUEST_URI": "/app/%zz"}, 400, "", "", ""},
		{"short escape", params{"REQUEST_URI": "/app/%2"}, 400, "", "", ""},
		{"nul", params{"REQUEST_URI": "/app/%00"}, 400, "", "", ""},
		{"above root", params{"REQUEST_URI": "/../app"}, 400, "", "", ""},
		{"directory alias", params{"REQUEST_URI": "/wsgi/hello.wsgi/x/y"}, 0, "srv/scripts/hello.wsgi", "/wsgi/hello.wsgi", "/x/y"},
		{"directory alias no rest", params{"REQUEST_URI": "/wsgi//hello.wsgi"}, 0, "srv/scripts/hello.wsgi", "/wsgi/hello.wsgi", ""},
		{"directory alias inner link", params{"REQUEST_URI": "/wsgi/ok-link.wsgi"}, 0, "srv/scripts/ok-link.wsgi", "/wsgi/ok-link.wsgi", ""},
		{"directory alias needs slash", params{"REQUEST_URI": "/wsgi"}, 404, "", "", ""},
		{"directory mount itself is 403", params{"REQUEST_URI": "/wsgi/"}, 403, "", "", ""},
		{"directory alias missing", params{"REQUEST_URI": "/wsgi/nope.wsgi"}, 404, "", "", ""},
		{"directory alias subdir", params{"REQUEST_URI": "/wsgi/sub/x"}, 404, "", "", ""},
		{"directory alias symlink escape", params{"REQUEST_URI": "/wsgi/evil.wsgi"}, 403, "", "", ""},
		{"directory alias dotdot", params{"REQUEST_URI": "/wsgi/%2e%2e/secret.wsgi"}, 404, "", "", ""},
		{"alias match", params{"REQUEST_URI": "/m/hello/rest"}, 0, "srv/scripts/hello.wsgi", "/m/hello", "/rest"},
		{"alias match missing", params{"REQUEST_URI": "/m/nope"}, 404, "", "", ""},
		{"handler", params{"REQUEST_URI": "/~bob/blog.wsgi/a/b", "SCRIPT_FILENAME": bob + "/blog.wsgi"}, 0,
			"home/bob/public_html/blog.wsgi", "/~bob/blog.wsgi", "/a/b"},
		{"handler front-end split", params{"REQUEST_URI": "/u/bob/b/a//b", "SCRIPT_FILENAME": bob + "/blog.wsgi", "PATH_INFO": "/a/b"}, 0,
			"home/bob/public_html/blog.wsgi", "/u/bob/b", "/a/b"},
		{"handler inner link", params{"REQUEST_URI": "/~bob/link.wsgi", "SCRIPT_FILENAME": bob + "/link.wsgi"}, 0,
			"home/bob/public_html/link.wsgi", "/~bob/link.wsgi", ""},
		{"handler dotdot", params{"REQUEST_URI": "/~bob/x", "SCRIPT_FILENAME": bob + "/../../../srv/secret.wsgi"}, 403, "", "", ""},
		{"handler relative", params{"REQUEST_URI": "/~bob/x", "SCRIPT_FILENAME": "blog.wsgi"}, 403, "", "", ""},
		{"handler symlink escape", params{"REQUEST_URI": "/~bob/esc.wsgi", "SCRIPT_FILENAME": bob + "/esc.wsgi"}, 403, "", "", ""},
		{"handler directory", params{"REQUEST_URI": "/~bob/dir.wsgi", "SCRIPT_FILENAME": bob + "/dir.wsgi"}, 404, "", "", ""},
		{"handler missing", params{"REQUEST_URI": "/~bob/gone.wsgi", "SCRIPT_FILENAME": bob + "/gone.wsgi"}, 404, "", "", ""},
		{"handler wrong extension", params{"REQUEST_URI": "/~bob/x.txt", "SCRIPT_FILENAME": bob + "/x.txt"}, 404, "", "", ""},
		{"handler outside", params{"REQUEST_URI": "/s", "SCRIPT_FILENAME": dir + "/srv/secret.wsgi"}, 404, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, status := routeStatus(t, c, tt.p)
			if status != tt.status {
				t.Fatalf("status %d, want %d (route %+v)", status, tt.status, r)
			}
			if status != 0 {
				return
			}
			if r.ScriptFilename != filepath.Join(dir, tt.file) || r.ScriptName != tt.sn || r.PathInfo != tt.pi {
				t.Errorf("got %s %q %q, want %s %q %q", r.ScriptFilename, r.ScriptName, r.PathInfo, tt.file, tt.sn, tt.pi)
			}
		})
	}
}

func TestRouteEncodedSlashAllowed(t *testing.T) {
	c, _ := loadTree(t, map[string]string{"00.toml": "[server]\nallow-encoded-slashes = true\n[[script-alias]]\nurl = \"/app\"\npath = \"$D/app.wsgi\"\n"}, "app.wsgi")
	r, status := routeStatus(t, c, params{"REQUEST_URI": "/app/a%2fb%20c"})
	if status != 0 || r.PathInfo != "/a%2fb c" {
		t.Errorf("status %d route %+v", status, r)
	}
}

func TestRouteProcessGroups(t *testing.T) {
	c, dir := routeFixture(t)
	bob := dir + "/home/bob/public_html/blog.wsgi"
	tests := []struct {
		name   string
		p      params
		env    map[string]string // bridge environment
		status int
		group  string
	}{
		{"default embedded", params{"REQUEST_URI": "/app"}, nil, 0, ""},
		{"directory env", params{"REQUEST_URI": "/~bob/blog.wsgi", "SCRIPT_FILENAME": bob}, nil, 0, "bob:1"},
		{"param beats context env", params{"REQUEST_URI": "/~bob/blog.wsgi", "SCRIPT_FILENAME": bob, "PROCESS_GROUP": "bob:2"}, nil, 0, "bob:2"},
		{"restrict-process", params{"REQUEST_URI": "/~bob/blog.wsgi", "SCRIPT_FILENAME": bob, "PROCESS_GROUP": "default"}, nil, 500, ""},
		{"restrict-process embedded", params{"REQUEST_URI": "/~bob/blog.wsgi", "SCRIPT_FILENAME": bob, "PROCESS_GROUP": "%{GLOBAL}"}, nil, 500, ""},
		{"restrict-process undefined", params{"REQUEST_URI": "/~bob/blog.wsgi", "SCRIPT_FILENAME": bob, "PROCESS_GROUP": "bob:3"}, nil, 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.LookupEnv = func(n string) (string, bool) { v, ok := tt.env[n]; return v, ok }
			r, status := routeStatus(t, c, tt.p)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%+v)", status, tt.status, r)
			}
			if status == 0 && (r.ProcessGroup != tt.group || r.Daemon == nil || r.Daemon.Name != tt.group) {
				t.Errorf("group %q daemon %+v, want %q", r.ProcessGroup, r.Daemon, tt.group)
			}
		})
	}
}

func TestRouteEnvProcessGroup(t *testing.T) {
	c, _ := loadTree(t, map[string]string{"00.toml": "[server]\nprocess-group = \"%{ENV:PG}\"\n[daemon.a]\n[daemon.b]\n[[script-alias]]\nurl = \"/\"\npath = \"$D/app.wsgi\"\n"}, "app.wsgi")
	for _, tt := range []struct {
		p      params
		osenv  string
		status int
		group  string
	}{
		{params{"REQUEST_URI": "/", "PG": "b"}, "a", 0, "b"},
		{params{"REQUEST_URI": "/"}, "a", 0, "a"},
		{params{"REQUEST_URI": "/", "PG": "%{GLOBAL}"}, "", 0, ""},
		{params{"REQUEST_URI": "/"}, "", 500, ""}, // literal "%{ENV:PG}" names no daemon
	} {
		c.LookupEnv = func(n string) (string, bool) { return tt.osenv, n == "PG" && tt.osenv != "" }
		r, status := routeStatus(t, c, tt.p)
		if status != tt.status || status == 0 && r.ProcessGroup != tt.group {
			t.Errorf("%v env %q: status %d route %+v", tt.p, tt.osenv, status, r)
		}
	}
}

func vhostFixture(t *testing.T, server string) *Config {
	c, _ := loadTree(t, map[string]string{
		"00.toml": server + `
[[script-alias]]
url = "/app"
path = "$D/app.wsgi"

[[script-alias-match]]
regex = "^/site"
path = "$D/app.wsgi"

[[location]]
url = "/app/cross"
process-group = "site1"

[[location]]
url = "/app/env"
process-group = "%{ENV:PG}"
`,
		"10-site1.toml": `
[vhost]
server-name = "www.site1.com"
server-alias = ["site1.com"]
process-group = "site1"

[daemon.site1]
processes = 2

[[script-alias]]
url = "/site"
path = "$D/other.wsgi"
reload-mechanism = "module"
`,
		"20-site2.toml": `
[vhost]
server-name = "www.site2.com"
port = 8443
`,
	}, "app.wsgi", "other.wsgi")
	return c
}

func TestRouteVHosts(t *testing.T) {
	c := vhostFixture(t, "")
	tests := []struct {
		name                 string
		p                    params
		status               int
		vhost, script, group string
		reload               string
	}{
		{"server context", params{"REQUEST_URI": "/app", "SERVER_NAME": "elsewhere"}, 0, "", "app.wsgi", "", "module"},
		{"by server-name", params{"REQUEST_URI": "/app", "SERVER_NAME": "WWW.SITE1.COM"}, 0, "www.site1.com", "app.wsgi", "site1", "process"},
		{"by alias in Host", params{"REQUEST_URI": "/app", "HTTP_HOST": "Site1.com:8080"}, 0, "www.site1.com", "app.wsgi", "site1", "process"},
		{"vhost alias first", params{"REQUEST_URI": "/site/x", "SERVER_NAME": "site1.com"}, 0, "www.site1.com", "other.wsgi", "site1", "module"},
		{"server alias-match elsewhere", params{"REQUEST_URI": "/site/x"}, 0, "", "app.wsgi", "", "module"},
		{"port mismatch", params{"REQUEST_URI": "/app", "SERVER_NAME": "www.site2.com", "SERVER_PORT": "443"}, 0, "", "app.wsgi", "", "module"},
		{"port match", params{"REQUEST_URI": "/app", "SERVER_NAME": "www.site2.com", "SERVER_PORT": "8443"}, 0, "www.site2.com", "app.wsgi", "", "module"},
		{"cross-vhost literal from server", params{"REQUEST_URI": "/app/cross"}, 500, "", "", "", ""},
		{"cross-vhost literal own vhost", params{"REQUEST_URI": "/app/cross", "SERVER_NAME": "www.site1.com"}, 0, "www.site1.com", "app.wsgi", "site1", "process"},
		{"cross-vhost env from other vhost", params{"REQUEST_URI": "/app/env", "SERVER_NAME": "www.site2.com", "SERVER_PORT": "8443", "PG": "site1"}, 500, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, status := routeStatus(t, c, tt.p)
			if status != tt.status {
				t.Fatalf("status %d, want %d (%+v)", status, tt.status, r)
			}
			if status != 0 {
				return
			}
			if r.VHost != tt.vhost || filepath.Base(r.ScriptFilename) != tt.script || r.ProcessGroup != tt.group || r.ReloadMechanism != tt.reload {
				t.Errorf("got vhost %q script %s group %q reload %q", r.VHost, r.ScriptFilename, r.ProcessGroup, r.ReloadMechanism)
			}
		})
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `daemon "site1" belongs to vhost www.site1.com; selecting it from the server context`) {
		t.Errorf("warnings %q", c.Warnings)
	}
}

func TestRouteRestrictEmbedded(t *testing.T) {
	c := vhostFixture(t, "[server]\nrestrict-embedded = true\n")
	_, err := c.Route(params{"REQUEST_URI": "/app"})
	re, ok := err.(*RouteError)
	if !ok || re.Status != 500 || !strings.Contains(re.Msg, "embedded mode is restricted") {
		t.Errorf("err = %v", err)
	}
	if r, status := routeStatus(t, c, params{"REQUEST_URI": "/app", "SERVER_NAME": "site1.com"}); status != 0 || r.ProcessGroup != "site1" {
		t.Errorf("daemon route: %d %+v", status, r)
	}
}

func TestRouteAliasOrder(t *testing.T) {
	c, dir := loadTree(t, map[string]string{
		"00.toml": "[[script-alias-match]]\nregex = \"^/a\"\npath = \"$D/m.wsgi\"\n[[script-alias]]\nurl = \"/a\"\npath = \"$D/a.wsgi\"\n",
		"10.toml": "[[script-alias]]\nurl = \"/a/b\"\npath = \"$D/ab.wsgi\"\n[[script-alias]]\nurl = \"/\"\npath = \"$D/root.wsgi\"\n",
	}, "m.wsgi", "a.wsgi", "ab.wsgi", "root.wsgi")
	for uri, want := range map[string][3]string{
		"/a/b/c": {"a.wsgi", "/a", "/b/c"}, // first script-alias in file order wins
		"/ax":    {"root.wsgi", "", "/ax"}, // script-alias before script-alias-match; root mount
		"/":      {"root.wsgi", "", "/"},
	} {
		r, status := routeStatus(t, c, params{"REQUEST_URI": uri})
		if status != 0 || r.ScriptFilename != filepath.Join(dir, want[0]) || r.ScriptName != want[1] || r.PathInfo != want[2] {
			t.Errorf("%s: %d %+v, want %v", uri, status, r, want)
		}
	}
}

func TestRouteContextPrecedence(t *testing.T) {
	c, _ := loadTree(t, map[string]string{
		"00.toml": `
[server]
callable-object = "s"
env = { A = "s", B = "s", C = "s", D = "s", E = "s" }
output-buffering = true

[[location]]
url = "/p/q"
env = { E = "server-l2" }
pass-authorization = false
`,
		"10-v.toml": `
[vhost]
server-name = "v"
callable-object = "v"
env = { B = "v", C = "v", D = "v", E = "v" }
script-reloading = false

[[script-alias]]
url = "/p"
path = "$D/d/app.wsgi"
callable-object = "a"
env = { C = "a", D = "a", E = "a" }
auth-type = "basic"
auth-name = "Members"
require = ["valid-user"]

[[location]]
url = "/p/q"
env = { E = "l2" }
callable-object = "l2"
pass-authorization = true

[[location]]
url = "/p"
env = { D = "l1", E = "l1" }
callable-object = "l1"

[[directory]]
path = "$D/d"
env = { F = "d" }
access-script = "/srv/access.wsgi"
`,
		"20-w.toml": "[vhost]\nserver-name = \"w\"\n[[script-alias]]\nurl = \"/p\"\npath = \"$D/d/app.wsgi\"\n[[directory]]\npath = \"$D/d\"\ncallable-object = \"dd\"\n",
	}, "d/app.wsgi")
	env := func(kv ...string) []EnvVar {
		var out []EnvVar
		for i := 0; i < len(kv); i += 2 {
			out = append(out, EnvVar{kv[i], kv[i+1]})
		}
		return out
	}
	tests := []struct {
		p        params
		callable string
		env      []EnvVar
		passAuth bool
	}{
		{params{"REQUEST_URI": "/p/q/x", "SERVER_NAME": "v"}, "l2", env("A", "s", "B", "v", "C", "a", "D", "l1", "E", "l2", "F", "d"), true},
		{params{"REQUEST_URI": "/p/x", "SERVER_NAME": "v"}, "l1", env("A", "s", "B", "v", "C", "a", "D", "l1", "E", "l1", "F", "d"), false},
		{params{"REQUEST_URI": "/p/q", "SERVER_NAME": "w"}, "dd", env("A", "s", "B", "s", "C", "s", "D", "s", "E", "server-l2"), false},
	}
	for _, tt := range tests {
		r, status := routeStatus(t, c, tt.p)
		if status != 0 {
			t.Fatalf("%v: status %d", tt.p, status)
		}
		if r.CallableObject != tt.callable || !reflect.DeepEqual(r.Env, tt.env) || r.PassAuthorization != tt.passAuth || !r.OutputBuffering {
			t.Errorf("%v: callable %q env %v passauth %v", tt.p, r.CallableObject, r.Env, r.PassAuthorization)
		}
	}
	r, _ := routeStatus(t, c, tests[0].p)
	wantAuth := Auth{Type: "Basic", Name: "Members", Require: []string{"valid-user"}, AccessScript: "/srv/access.wsgi"}
	if !reflect.DeepEqual(r.Auth, wantAuth) || r.ScriptReloading {
		t.Errorf("auth %+v reloading %v", r.Auth, r.ScriptReloading)
	}
}

// A file mounted with a trailing slash (WSGIScriptAlias /trail/ app.wsgi):
// mod_wsgi 4.9 runs it for the mount itself with SCRIPT_NAME "/trail/" and
// PATH_INFO ""; it appends anything deeper to the file name, a 404.
func TestFileMountWithTrailingSlash(t *testing.T) {
	c, dir := loadTree(t, map[string]string{"00.toml": `
[[script-alias]]
url = "/trail/"
path = "$D/srv/app.wsgi"
`}, "srv/app.wsgi")
	for _, tt := range []struct {
		uri    string
		status int
		sn, pi string
	}{
		{"/trail/", 0, "/trail/", ""},
		{"/trail//?a=/b", 0, "/trail/", ""},
		{"/trail", 404, "", ""},
		{"/trail/x", 404, "", ""},
	} {
		r, status := routeStatus(t, c, params{"REQUEST_URI": tt.uri})
		if status != tt.status {
			t.Errorf("%s: status %d, want %d (route %+v)", tt.uri, status, tt.status, r)
			continue
		}
		if status == 0 && (r.ScriptFilename != filepath.Join(dir, "srv/app.wsgi") || r.ScriptName != tt.sn || r.PathInfo != tt.pi) {
			t.Errorf("%s: %q SCRIPT_NAME %q PATH_INFO %q, want %q %q", tt.uri, r.ScriptFilename, r.ScriptName, r.PathInfo, tt.sn, tt.pi)
		}
	}
}

// resolve walks with direct lstat calls, and must agree with EvalSymlinks:
// the containment check of scripts in directories rests on it.
func TestResolveAgreesWithEvalSymlinks(t *testing.T) {
	_, dir := routeFixture(t)
	for _, p := range []string{
		"srv/scripts/hello.wsgi", "srv/scripts/evil.wsgi", "srv/scripts/ok-link.wsgi", "home/bob/public_html/esc.wsgi",
		"srv/scripts", "srv/scripts/nope.wsgi", "srv/app.wsgi/below", "srv/scripts/sub/x", "",
	} {
		file := filepath.Join(dir, p)
		want, werr := filepath.EvalSymlinks(file)
		got, fi, err := resolve(file)
		if (err == nil) != (werr == nil) || got != want {
			t.Errorf("resolve(%s) = %q, %v; EvalSymlinks: %q, %v", p, got, err, want, werr)
			continue
		}
		if err == nil {
			st, _ := os.Stat(want)
			if fi.Mtime != st.ModTime().UnixNano() || fi.Mode.IsRegular() != st.Mode().IsRegular() {
				t.Errorf("resolve(%s): info %+v, os.Stat: %v %v", p, fi, st.Mode(), st.ModTime())
			}
		}
	}
}
