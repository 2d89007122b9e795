package convert

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"

	"github.com/wsgifcgi/wsgifcgi/groups"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// render is what the command prints: the TOML, then the notes.
func render(t *testing.T, res *Result) string {
	t.Helper()
	var b bytes.Buffer
	if err := res.Write(&b); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n# ---- not translated (stderr) ----\n")
	for _, n := range res.Notes {
		b.WriteString(n.String() + "\n")
	}
	for _, w := range res.Warnings {
		b.WriteString("warning: " + w.Text("") + "\n")
	}
	return b.String()
}

// load writes the result into a temporary conf.d and loads it as serve does.
func load(t *testing.T, res *Result) *groups.Config {
	t.Helper()
	dir := t.TempDir()
	if err := res.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	cfg, err := groups.Load(dir)
	if err != nil {
		t.Fatalf("the output does not load:\n%v\n%s", err, render(t, res))
	}
	return cfg
}

func convertFile(t *testing.T, path string) *Result {
	t.Helper()
	res, err := Convert(path)
	if err != nil {
		t.Fatalf("Convert(%s): %v", path, err)
	}
	return res
}

// TestReferenceExamples converts the examples of the mod_wsgi directive
// reference: the output must match its golden file and load.
func TestReferenceExamples(t *testing.T) {
	checks := map[string]func(*testing.T, *groups.Config){
		"two-sites": func(t *testing.T, c *groups.Config) {
			// <VirtualHost *:80>, one per name: no port, so the vhosts
			// match behind a front end on any port.
			if len(c.VHosts) != 2 || c.VHosts[0].ServerName != "www.site1.com" || c.VHosts[0].Port != 0 {
				t.Errorf("vhosts: %+v", c.VHosts)
			}
			d := c.Daemons["www.site1.com"]
			if d == nil || d.User != "joe" || d.Group != "joe" || d.Processes != 2 || d.Threads != 25 || d.VHost != "www.site1.com" {
				t.Errorf("daemon www.site1.com: %+v", d)
			}
			if d := c.Daemons["www.site2.com"]; d == nil || d.User != "bob" || d.VHost != "www.site2.com" {
				t.Errorf("daemon www.site2.com: %+v", d)
			}
		},
		"restrict-process": func(t *testing.T, c *groups.Config) {
			if len(c.Daemons) != 7 || c.Daemons["default"].VHost != "" || c.Daemons["bob:1"].VHost != "www.site.com" {
				t.Errorf("daemons: %v", c.Daemons)
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings: %v", c.Warnings)
			}
		},
		"script-alias": func(t *testing.T, c *groups.Config) {
			im := c.ImportScripts()
			if len(im) != 1 || im[0].Path != "/srv/app/app.wsgi" || im[0].ProcessGroup != "example" || im[0].ApplicationGroup != "" {
				t.Errorf("import scripts: %+v", im)
			}
			if d := c.Daemons["example"]; d == nil || d.ProcessTitle() != "(wsgi:example)" {
				t.Errorf("daemon example: %+v", d)
			}
		},
		"application-group": func(t *testing.T, c *groups.Config) {},
		// application-group= of WSGIAuthUserScript becomes
		// auth-application-group (the golden file shows it).
		"auth-scripts": func(t *testing.T, c *groups.Config) {},
		"directives": func(t *testing.T, c *groups.Config) {
			s := c.Server
			if s.SocketPrefix != "/etc/httpd/run/wsgi" || s.PythonHome != "/opt/venv" ||
				strings.Join(s.PythonPath, ":") != "/srv/lib:/srv/site-packages" || s.PythonOptimize != 1 ||
				!s.RestrictEmbedded || s.RestrictStdin || s.RestrictStdout || s.RestrictSignal ||
				s.LazyInitialization || !s.ChunkedRequest || !s.AllowEncodedSlashes || s.AcceptMutex != "sysvsem" {
				t.Errorf("server: %+v", s)
			}
			if c.Embedded.User != "www-data" || c.Embedded.Group != "www-data" {
				t.Errorf("embedded: %+v", c.Embedded)
			}
			d := c.Daemons["all"]
			if d == nil || d.User != "app" || d.Processes != 3 || d.Threads != 10 || d.Umask != 0o007 ||
				d.Home != "/srv/app" || len(d.PythonPath) != 2 || d.StackSize != 524288 || d.MaximumRequests != 1000 ||
				d.InactivityTimeout != 300*time.Second || d.DeadlockTimeout != time.Minute || d.ShutdownTimeout != 10*time.Second ||
				d.RequestTimeout != time.Minute || d.QueueTimeout != 45*time.Second || d.GracefulTimeout != 20*time.Second ||
				d.RestartInterval != time.Hour || d.StartupTimeout != 15*time.Second || d.CPUPriority != 5 ||
				d.ListenBacklog != 50 || d.ReceiveBufferSize != 65536 || d.SendBufferSize != 65536 {
				t.Errorf("daemon all: %+v", d)
			}
			if len(c.VHosts) != 1 || c.VHosts[0].Port != 0 || strings.Join(c.VHosts[0].ServerAliases, ",") != "www.app.example.com" {
				t.Errorf("vhost: %+v", c.VHosts[0])
			}
			if im := c.ImportScripts(); len(im) != 2 || im[1].VHost != "app.example.com" || im[1].ApplicationGroup != "x" {
				t.Errorf("import scripts: %+v", im)
			}
		},
	}
	confs, _ := filepath.Glob("testdata/ref/*.conf")
	if len(confs) != len(checks) {
		t.Fatalf("%d examples, %d checks", len(confs), len(checks))
	}
	for _, conf := range confs {
		name := strings.TrimSuffix(filepath.Base(conf), ".conf")
		t.Run(name, func(t *testing.T) {
			res := convertFile(t, conf)
			golden(t, strings.TrimSuffix(conf, ".conf")+".golden", render(t, res))
			cfg := load(t, res)
			check, ok := checks[name]
			if !ok {
				t.Fatalf("no check for %s", name)
			}
			check(t, cfg)
		})
	}
}

func golden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./convert -update)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test ./convert -update rewrites it):\n%s", path, got)
	}
}

// TestRealistic converts a distribution-style httpd.conf: includes, module
// lines, logs, static aliases and two sites.
func TestRealistic(t *testing.T) {
	res := convertFile(t, "testdata/realistic/httpd.conf")
	cfg := load(t, res)
	var names []string
	for _, f := range res.Files {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, " "); got != "00-server.toml 10-blog.example.com_443.toml 10-blog.example.com_80.toml 10-shop.example.com.toml" {
		t.Errorf("files: %s", got)
	}
	if cfg.Server.ServerName != "www.example.com" || cfg.Server.SocketPrefix != "/etc/httpd/run/wsgi" ||
		!cfg.Server.RestrictEmbedded || cfg.Embedded.User != "apache" {
		t.Errorf("server: %+v, embedded %+v", cfg.Server, cfg.Embedded)
	}
	if d := cfg.Daemons["shop"]; d == nil || d.VHost != "shop.example.com" || d.Processes != 2 || d.PythonPath[0] != "/srv/shop/src" {
		t.Errorf("daemon shop: %+v", d)
	}
	if d := cfg.Daemons["blog"]; d == nil || d.VHost != "blog.example.com" || d.MaximumRequests != 500 {
		t.Errorf("daemon blog: %+v", d)
	}

	var got []string
	for _, n := range res.Notes {
		got = append(got, n.String())
	}
	want := []string{
		"testdata/realistic/httpd.conf:3: Listen: not translated (",
		"testdata/realistic/httpd.conf:4: Listen: not translated (",
		"testdata/realistic/conf.modules.d/00-base.conf:1: LoadModule: not translated (",
		"testdata/realistic/conf.modules.d/00-base.conf:2: LoadModule: not translated (",
		"testdata/realistic/conf.modules.d/00-base.conf:3: LoadModule: not translated (",
		"testdata/realistic/conf.modules.d/10-wsgi.conf:1: LoadModule: not translated (",
		"testdata/realistic/httpd.conf:8: ServerAdmin: not translated (",
		"testdata/realistic/httpd.conf:12: AllowOverride: not translated (",
		"testdata/realistic/httpd.conf:13: Require: not translated (access control",
		"testdata/realistic/httpd.conf:16: DocumentRoot: not translated (static files",
		"testdata/realistic/httpd.conf:18: Options: not translated (Indexes FollowSymLinks",
		"testdata/realistic/httpd.conf:19: AllowOverride: not translated (",
		"testdata/realistic/httpd.conf:20: Require: not translated (",
		"testdata/realistic/httpd.conf:24: DirectoryIndex: not translated (",
		"testdata/realistic/httpd.conf:27: ErrorLog: not translated (logging",
		"testdata/realistic/httpd.conf:28: LogLevel: not translated (logging",
		"testdata/realistic/httpd.conf:30: LogFormat: not translated (logging",
		"testdata/realistic/httpd.conf:31: CustomLog: not translated (logging",
		"testdata/realistic/conf.d/blog.conf:3: SSLEngine: not translated (TLS",
		"testdata/realistic/conf.d/blog.conf:4: SSLCertificateFile: not translated (TLS",
		"testdata/realistic/conf.d/blog.conf:5: SSLCertificateKeyFile: not translated (TLS",
		"testdata/realistic/conf.d/blog.conf:10: Alias: not translated (static files: the front end serves them",
		"testdata/realistic/conf.d/blog.conf:20: RewriteEngine: not translated (mod_rewrite",
		"testdata/realistic/conf.d/blog.conf:21: RewriteRule: not translated (mod_rewrite",
		"testdata/realistic/conf.d/blog.conf:22: Header: not translated (",
		"testdata/realistic/conf.d/blog.conf:23: CustomLog: not translated (",
		"testdata/realistic/conf.d/blog.conf:28: Redirect: not translated (",
		"testdata/realistic/conf.d/shop.conf:4: DocumentRoot: not translated (",
		"testdata/realistic/conf.d/shop.conf:5: Alias: not translated (static files: the front end serves them",
		"testdata/realistic/conf.d/shop.conf:7: Require: not translated (",
		"testdata/realistic/conf.d/shop.conf:17: Require: not translated (",
		"testdata/realistic/conf.d/shop.conf:21: ErrorLog: not translated (",
		"testdata/realistic/conf.d/shop.conf:22: CustomLog: not translated (",
	}
	if len(got) != len(want) {
		t.Fatalf("%d notes, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || !strings.HasSuffix(got[i], ")") {
			t.Errorf("note %d:\n got %s\nwant %s...)", i, got[i], want[i])
		}
	}
}

// TestEdgeCases covers the less common shapes; the golden file shows each
// line's fate, and the output must still load.
func TestEdgeCases(t *testing.T) {
	res := convertFile(t, "testdata/edge.conf")
	golden(t, "testdata/edge.golden", render(t, res))
	cfg := load(t, res)
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], `daemon "www" belongs to vhost www.example.com`) {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
}

// An Apache configuration without WSGIRestrict* lines converts to what
// Apache + mod_wsgi 4 gives: stdin and stdout unrestricted, signal
// restricted. A <VirtualHost *:80> alone with its name gets no port, so it
// still matches behind a front end on 8080; a :80/:443 pair keeps its
// ports, with a warning naming the file to change.
func TestConvertModWSGI4DefaultsAndPorts(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"site.wsgi", "www.wsgi"} {
		os.WriteFile(filepath.Join(dir, f), []byte("def application(e, s): pass\n"), 0o644)
	}
	conf := filepath.Join(dir, "httpd.conf")
	os.WriteFile(conf, []byte(strings.ReplaceAll(`WSGIScriptAlias / D/site.wsgi
<VirtualHost *:80>
ServerName www.example.com
WSGIScriptAlias / D/www.wsgi
</VirtualHost>
<VirtualHost *:80>
ServerName pair.example.com
</VirtualHost>
<VirtualHost *:443>
ServerName pair.example.com
</VirtualHost>
`, "D/", dir+"/")), 0o644)
	res := convertFile(t, conf)
	c := load(t, res)
	if s := c.Server; s.RestrictStdin || s.RestrictStdout || !s.RestrictSignal {
		t.Errorf("restrict-stdin %v, restrict-stdout %v, restrict-signal %v; want mod_wsgi 4's false, false, true",
			s.RestrictStdin, s.RestrictStdout, s.RestrictSignal)
	}
	rt, err := c.Route(mapParams{"REQUEST_URI": "/x", "SERVER_NAME": "www.example.com", "SERVER_PORT": "8080"})
	if err != nil || rt.VHost != "www.example.com" || rt.ScriptFilename != filepath.Join(dir, "www.wsgi") {
		t.Errorf("behind a front end on 8080: %+v %v", rt, err)
	}
	var ports []int
	for _, v := range c.VHosts {
		ports = append(ports, v.Port)
	}
	if fmt.Sprint(ports) != "[80 443 0]" && fmt.Sprint(ports) != "[443 80 0]" {
		t.Errorf("vhost ports %v", ports)
	}
	if len(res.Warnings) != 2 || !strings.Contains(res.Warnings[0].Text("/etc/x"), "port = 80 is kept in /etc/x/10-pair.example.com_80.toml") {
		for _, w := range res.Warnings {
			t.Log(w.Text("/etc/x"))
		}
		t.Errorf("warnings about the kept ports: %d", len(res.Warnings))
	}
}

// mapParams are FastCGI params for routing checks.
type mapParams map[string]string

func (m mapParams) Get(name string) (string, bool) { v, ok := m[name]; return v, ok }

// A configuration in Latin-1: comments get U+FFFD quietly, values with a
// warning that names them (TOML holds only UTF-8), and the files are TOML.
func TestNotUTF8(t *testing.T) {
	dir := write(t, map[string]string{"httpd.conf": "# caf\xe9\nServerName x\nWSGIScriptAlias /caf\xe9 /srv/app.wsgi\n"})
	res, err := Convert(filepath.Join(dir, "httpd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].Text(""), "[[script-alias]] url (WSGIScriptAlias at httpd.conf:3): the value has bytes that are not UTF-8") {
		for _, w := range res.Warnings {
			t.Log(w.Text(""))
		}
		t.Fatalf("%d warnings", len(res.Warnings))
	}
	for _, f := range res.Files {
		var v map[string]any
		if _, err := toml.Decode(f.Text, &v); err != nil || !utf8.ValidString(f.Text) {
			t.Errorf("%s: %v\n%s", f.Name, err, f.Text)
		}
	}
}
