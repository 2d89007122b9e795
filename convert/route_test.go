package convert

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wsgifcgi/wsgifcgi/groups"
)

// params is a groups.Params for tests.
type params map[string]string

func (p params) Get(n string) (string, bool) { v, ok := p[n]; return v, ok }

// routeConf is the reference's setups with real paths ($D), so that the
// converted configuration can route requests to existing scripts.
const routeConf = `
WSGIDaemonProcess default processes=2 threads=25

<VirtualHost *:80>
ServerName www.site1.com
WSGIDaemonProcess www.site1.com user=joe group=joe processes=2 threads=25
WSGIProcessGroup www.site1.com
WSGIScriptAlias / $D/site1.wsgi
</VirtualHost>

<VirtualHost *:80>
ServerName www.site.com
WSGIDaemonProcess bob:1 user=bob group=bob threads=25
WSGIDaemonProcess bob:2 user=bob group=bob threads=25
SetEnv PROCESS_GROUP default
WSGIProcessGroup %{ENV:PROCESS_GROUP}
<Directory $D/home/bob/public_html>
Options ExecCGI
AddHandler wsgi-script .wsgi
WSGIRestrictProcess bob:1 bob:2
SetEnv PROCESS_GROUP bob:1
<Files blog.wsgi>
SetEnv PROCESS_GROUP bob:2
</Files>
</Directory>
</VirtualHost>

Alias /other-scripts/ $D/web/other-scripts/
<Location /other-scripts>
SetHandler wsgi-script
Options +ExecCGI
</Location>

WSGIScriptAliasMatch ^/wsgi-scripts/([^/]+) $D/web/wsgi-scripts/$1.wsgi

WSGIScriptAlias /secret $D/auth/app.wsgi
<Directory $D/auth>
AuthType Basic
AuthName "Top Secret"
AuthBasicProvider wsgi
WSGIAuthUserScript $D/auth/auth.wsgi
Require valid-user
</Directory>
`

func TestRoutes(t *testing.T) {
	d := t.TempDir()
	for _, f := range []string{"site1.wsgi", "home/bob/public_html/blog.wsgi", "home/bob/public_html/wiki.wsgi",
		"web/other-scripts/foo", "web/wsgi-scripts/hello.wsgi", "auth/app.wsgi", "auth/auth.wsgi"} {
		p := filepath.Join(d, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("def application(e, s): pass\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(d, "httpd.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(routeConf, "$D", d)), 0o644); err != nil {
		t.Fatal(err)
	}
	res := convertFile(t, conf)
	if len(res.Notes) != 0 {
		t.Errorf("notes: %v", res.Notes)
	}
	cfg := load(t, res)
	cfg.LookupEnv = func(string) (string, bool) { return "", false }
	route := func(p params) *groups.Route {
		t.Helper()
		r, err := cfg.Route(p)
		if err != nil {
			t.Fatalf("Route(%v): %v\n%s", p, err, render(t, res))
		}
		return r
	}

	r := route(params{"SERVER_PORT": "80", "SERVER_NAME": "www.site1.com", "REQUEST_URI": "/x/y"})
	if r.ScriptFilename != d+"/site1.wsgi" || r.ProcessGroup != "www.site1.com" || r.Daemon.User != "joe" || r.PathInfo != "/x/y" {
		t.Errorf("site1: %+v", r)
	}

	bob := d + "/home/bob/public_html/"
	for script, group := range map[string]string{"blog.wsgi": "bob:2", "wiki.wsgi": "bob:1"} {
		r = route(params{"SERVER_PORT": "80", "SERVER_NAME": "www.site.com", "REQUEST_URI": "/~bob/" + script + "/p", "SCRIPT_FILENAME": bob + script})
		if r.ProcessGroup != group || r.ScriptName != "/~bob/"+script || r.PathInfo != "/p" {
			t.Errorf("%s: process group %q, SCRIPT_NAME %q, PATH_INFO %q; want %s", script, r.ProcessGroup, r.ScriptName, r.PathInfo, group)
		}
	}

	r = route(params{"SERVER_PORT": "80", "SERVER_NAME": "other.example", "REQUEST_URI": "/other-scripts/foo/bar"})
	if r.ScriptFilename != d+"/web/other-scripts/foo" || r.ScriptName != "/other-scripts/foo" || r.PathInfo != "/bar" {
		t.Errorf("Alias + SetHandler: %+v", r)
	}

	r = route(params{"SERVER_PORT": "80", "SERVER_NAME": "other.example", "REQUEST_URI": "/wsgi-scripts/hello/x"})
	if r.ScriptFilename != d+"/web/wsgi-scripts/hello.wsgi" || r.ScriptName != "/wsgi-scripts/hello" || r.PathInfo != "/x" {
		t.Errorf("WSGIScriptAliasMatch: %+v", r)
	}

	r = route(params{"SERVER_PORT": "80", "SERVER_NAME": "other.example", "REQUEST_URI": "/secret"})
	if r.Auth.Type != "Basic" || r.Auth.Name != "Top Secret" || r.Auth.UserScript != d+"/auth/auth.wsgi" ||
		strings.Join(r.Auth.Require, ",") != "valid-user" {
		t.Errorf("auth: %+v", r.Auth)
	}
}
