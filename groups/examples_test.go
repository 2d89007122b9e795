package groups

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The examples of conf.d/examples are documentation (docs/configuration.md
// points at them); these tests keep them loadable and keep a few of their
// routed outcomes true.

const examplesDir = "../conf.d/examples"

// exampleConfigs lists what can be given to `wsgifcgi check -c`: every *.toml
// file of examplesDir, and every directory of it holding *.toml files.
func exampleConfigs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(examplesDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		p := filepath.Join(examplesDir, e.Name())
		if !e.IsDir() {
			if strings.HasSuffix(e.Name(), ".toml") {
				out = append(out, p)
			}
			continue
		}
		if m, _ := filepath.Glob(filepath.Join(p, "*.toml")); len(m) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// loadExample loads one example (a file or directory under examplesDir).
func loadExample(t *testing.T, name string) *Config {
	t.Helper()
	c, err := Load(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c.LookupEnv = func(string) (string, bool) { return "", false }
	return c
}

// exampleApp is the absolute path of a file under examplesDir/apps.
func exampleApp(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join(examplesDir, "apps", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// mustRoute routes p and fails the test on any error.
func mustRoute(t *testing.T, c *Config, p params) *Route {
	t.Helper()
	r, status := routeStatus(t, c, p)
	if status != 0 {
		t.Fatalf("Route(%v): status %d", p, status)
	}
	return r
}

func TestExamplesLoad(t *testing.T) {
	configs := exampleConfigs(t)
	if len(configs) < 10 {
		t.Fatalf("only %d examples found in %s: %v", len(configs), examplesDir, configs)
	}
	for _, p := range configs {
		t.Run(filepath.Base(p), func(t *testing.T) {
			c, err := Load(p)
			if err != nil {
				t.Fatalf("Load(%s):\n%v", p, err)
			}
			for _, w := range c.Warnings {
				t.Errorf("warning: %s", w)
			}
			if len(c.Files) == 0 {
				t.Errorf("no files read from %s", p)
			}
		})
	}
}

func TestExampleScriptAlias(t *testing.T) {
	c := loadExample(t, "10-script-alias.toml")
	hello := exampleApp(t, "wsgi-scripts/hello.wsgi")
	r := mustRoute(t, c, params{"REQUEST_URI": "/wsgi-scripts/hello.wsgi/x"})
	if r.ScriptFilename != hello || r.ScriptName != "/wsgi-scripts/hello.wsgi" || r.PathInfo != "/x" {
		t.Errorf("directory form: %q %q %q", r.ScriptFilename, r.ScriptName, r.PathInfo)
	}
	r = mustRoute(t, c, params{"REQUEST_URI": "/name/y"})
	if r.ScriptFilename != hello || r.ScriptName != "/name" || r.PathInfo != "/y" {
		t.Errorf("file form: %q %q %q", r.ScriptFilename, r.ScriptName, r.PathInfo)
	}
	for _, uri := range []string{"/wsgi-scripts", "/namex"} {
		if _, status := routeStatus(t, c, params{"REQUEST_URI": uri}); status != 404 {
			t.Errorf("%s: status %d, want 404", uri, status)
		}
	}
}

func TestExampleScriptAliasMatch(t *testing.T) {
	c := loadExample(t, "20-script-alias-match.toml")
	r := mustRoute(t, c, params{"REQUEST_URI": "/wsgi-scripts/hello/x"})
	if r.ScriptFilename != exampleApp(t, "wsgi-scripts/hello.wsgi") || r.ScriptName != "/wsgi-scripts/hello" || r.PathInfo != "/x" {
		t.Errorf("got %q %q %q", r.ScriptFilename, r.ScriptName, r.PathInfo)
	}
}

func TestExampleDaemonTwoSites(t *testing.T) {
	c := loadExample(t, "30-daemon-two-sites")
	for _, tt := range []struct {
		p     params
		vhost string
	}{
		{params{"REQUEST_URI": "/app", "SERVER_NAME": "www.site1.com"}, "www.site1.com"},
		{params{"REQUEST_URI": "/app", "HTTP_HOST": "site1.com"}, "www.site1.com"},
		{params{"REQUEST_URI": "/app", "SERVER_NAME": "www.site2.com"}, "www.site2.com"},
	} {
		r := mustRoute(t, c, tt.p)
		if r.VHost != tt.vhost || r.ProcessGroup != tt.vhost || r.ScriptName != "" || r.PathInfo != "/app" {
			t.Errorf("%v: vhost %q group %q %q %q", tt.p, r.VHost, r.ProcessGroup, r.ScriptName, r.PathInfo)
			continue
		}
		if d := r.Daemon; d.Processes != 2 || d.Threads != 25 || !d.Multiprocess() || r.ReloadMechanism != "process" {
			t.Errorf("%v: daemon %+v reload %q", tt.p, d, r.ReloadMechanism)
		}
	}
	if u := c.Daemons["www.site1.com"].User; u != "joe" {
		t.Errorf("site1 user %q", u)
	}
	// The server context has no alias: another host name finds nothing.
	if _, status := routeStatus(t, c, params{"REQUEST_URI": "/app", "SERVER_NAME": "other.example"}); status != 404 {
		t.Errorf("other host: status %d, want 404", status)
	}
}

// The per-user example names /home/bob/public_html; to route through it,
// the same configuration is loaded with that directory moved to a temporary
// one holding bob's scripts.
func TestExampleRestrictProcess(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(examplesDir, "40-per-user-restrict-process.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bob := filepath.Join(dir, "home/bob/public_html")
	writeTree(t, dir, map[string]string{
		"conf.d/40.toml":                  strings.ReplaceAll(string(src), "/home/bob/public_html", bob),
		"home/bob/public_html/blog.wsgi":  "",
		"home/bob/public_html/wiki.wsgi":  "",
		"home/bob/public_html/other.wsgi": "",
		"home/bob/public_html/notes.txt":  "",
		"home/bob/public_html/sub/x.wsgi": "",
		"home/bob/public_html/blogx.wsgi": "",
	})
	c, err := Load(filepath.Join(dir, "conf.d"))
	if err != nil {
		t.Fatal(err)
	}
	c.LookupEnv = func(string) (string, bool) { return "", false }
	req := func(script string, extra ...string) params {
		p := params{"SERVER_NAME": "www.site.com", "SCRIPT_FILENAME": filepath.Join(bob, script),
			"REQUEST_URI": "/~bob/" + script + "/more"}
		for i := 0; i+1 < len(extra); i += 2 {
			p[extra[i]] = extra[i+1]
		}
		return p
	}
	for _, tt := range []struct {
		p      params
		status int
		group  string
	}{
		{req("other.wsgi"), 0, "bob:1"},
		{req("sub/x.wsgi"), 0, "bob:1"},
		{req("blog.wsgi"), 0, "bob:2"},
		{req("blogx.wsgi"), 0, "bob:1"}, // a file's [[directory]] is that file only
		{req("wiki.wsgi"), 0, "bob:3"},
		{req("other.wsgi", "PROCESS_GROUP", "bob:3"), 0, "bob:3"}, // a front-end param comes first
		{req("other.wsgi", "PROCESS_GROUP", "joe:1"), 500, ""},    // not one of bob's
		{req("other.wsgi", "PROCESS_GROUP", "default"), 500, ""},
		{req("notes.txt"), 404, ""},
	} {
		r, status := routeStatus(t, c, tt.p)
		if status != tt.status || status == 0 && r.ProcessGroup != tt.group {
			t.Errorf("%s (%s): status %d, want %d %s", tt.p["SCRIPT_FILENAME"], tt.p["PROCESS_GROUP"], status, tt.status, tt.group)
		}
	}
	r := mustRoute(t, c, req("blog.wsgi"))
	if r.ScriptName != "/~bob/blog.wsgi" || r.PathInfo != "/more" {
		t.Errorf("split %q %q", r.ScriptName, r.PathInfo)
	}
}

func TestExampleApplicationGroup(t *testing.T) {
	c := loadExample(t, "50-application-group.toml")
	for _, tt := range []struct {
		p    params
		want string
	}{
		// The reference's own example.
		{params{"REQUEST_URI": "/wsgi-scripts/foo", "SERVER_NAME": "www.example.com", "HTTP_HOST": "www.example.com:8080"}, "www.example.com:8080|/wsgi-scripts/foo"},
		{params{"REQUEST_URI": "/wsgi-scripts/foo", "SERVER_NAME": "www.example.com", "HTTP_HOST": "www.example.com"}, "www.example.com|/wsgi-scripts/foo"},
		{params{"REQUEST_URI": "/global", "SERVER_NAME": "www.example.com"}, ""},
		{params{"REQUEST_URI": "/per-server/x", "SERVER_NAME": "www.example.com", "HTTP_HOST": "www.example.com:8080"}, "www.example.com:8080"},
		{params{"REQUEST_URI": "/shared-a", "SERVER_NAME": "www.example.com"}, "shared"},
		{params{"REQUEST_URI": "/shared-b", "SERVER_NAME": "www.example.com"}, "shared"},
	} {
		if r := mustRoute(t, c, tt.p); r.ApplicationGroup != tt.want {
			t.Errorf("%s: application group %q, want %q", tt.p["REQUEST_URI"], r.ApplicationGroup, tt.want)
		}
	}
}

func TestExampleImportScript(t *testing.T) {
	c := loadExample(t, "60-import-script.toml")
	want := []ImportScript{{Path: exampleApp(t, "hello.wsgi"), ProcessGroup: "site1", ApplicationGroup: ""}}
	if got := c.ImportScripts(); !reflect.DeepEqual(got, want) {
		t.Errorf("imports %+v, want %+v", got, want)
	}
	// The alias lands in the pool the import script preloads.
	r := mustRoute(t, c, params{"REQUEST_URI": "/app", "SERVER_NAME": "h"})
	if r.ProcessGroup != "site1" || r.ApplicationGroup != "" || r.ScriptFilename != want[0].Path {
		t.Errorf("route %q %q %q", r.ProcessGroup, r.ApplicationGroup, r.ScriptFilename)
	}
}

func TestExampleScriptReloading(t *testing.T) {
	c := loadExample(t, "65-script-reloading.toml")
	r := mustRoute(t, c, params{"REQUEST_URI": "/app"})
	if r.ProcessGroup != "app" || r.ReloadMechanism != "module" || !r.ScriptReloading || r.CallableObject != "application" {
		t.Errorf("/app: %q %q %v %q", r.ProcessGroup, r.ReloadMechanism, r.ScriptReloading, r.CallableObject)
	}
	r = mustRoute(t, c, params{"REQUEST_URI": "/admin/x"})
	if r.ReloadMechanism != "process" || r.ScriptReloading || r.CallableObject != "admin" {
		t.Errorf("/admin: %q %v %q", r.ReloadMechanism, r.ScriptReloading, r.CallableObject)
	}
}

func TestExamplePythonSetup(t *testing.T) {
	c := loadExample(t, "70-python-setup.toml")
	if r := mustRoute(t, c, params{"REQUEST_URI": "/x"}); r.ProcessGroup != "site" {
		t.Errorf("process group %q", r.ProcessGroup)
	}
	if lib := exampleApp(t, "lib"); !reflect.DeepEqual(c.Server.PythonPath, []string{lib}) || !c.Server.RestrictEmbedded {
		t.Errorf("server %+v", c.Server)
	}
}

func TestExamplePassAuthorizationAndEnv(t *testing.T) {
	c := loadExample(t, "80-pass-authorization-and-env.toml")
	r := mustRoute(t, c, params{"REQUEST_URI": "/api/v1"})
	if !r.PassAuthorization || !reflect.DeepEqual(r.Env, []EnvVar{{"SITE", "example"}}) {
		t.Errorf("/api: pass %v env %v", r.PassAuthorization, r.Env)
	}
	r = mustRoute(t, c, params{"REQUEST_URI": "/tools"})
	if r.PassAuthorization || r.CallableObject != "admin" ||
		!reflect.DeepEqual(r.Env, []EnvVar{{"SITE", "tools"}, {"TOOLS_ENTRY", "admin"}}) {
		t.Errorf("/tools: pass %v callable %q env %v", r.PassAuthorization, r.CallableObject, r.Env)
	}
}

func TestExampleAuthScripts(t *testing.T) {
	c := loadExample(t, "90-auth-scripts.toml")
	auth, access := exampleApp(t, "auth.wsgi"), exampleApp(t, "access.wsgi")
	for _, tt := range []struct {
		uri  string
		want Auth
	}{
		{"/secret", Auth{Type: "Basic", Name: "Top Secret", Require: []string{"valid-user"}, UserScript: auth}},
		{"/secret/agents/x", Auth{Type: "Basic", Name: "Top Secret", Require: []string{"group secret-agents"}, UserScript: auth, GroupScript: auth}},
		{"/digest", Auth{Type: "Digest", Name: "Top Secret", Require: []string{"user joe"}, UserScript: auth}},
		{"/local/hello.wsgi", Auth{AccessScript: access}},
	} {
		if r := mustRoute(t, c, params{"REQUEST_URI": tt.uri}); !reflect.DeepEqual(r.Auth, tt.want) {
			t.Errorf("%s: auth %+v, want %+v", tt.uri, r.Auth, tt.want)
		}
	}
}
