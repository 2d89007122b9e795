package groups

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, _ := loadTree(t, map[string]string{"00.toml": "[server]\n"})
	want := Server{
		SocketPrefix: "/run/wsgifcgi/wsgi", SocketMode: 0o660, WebServerAddrs: []string{"127.0.0.1", "::1"},
		PythonExecutable: "python3", RestrictSignal: true, // stdin/stdout: off, as mod_wsgi >= 3.0
		CaseSensitivity: true, LazyInitialization: true, AcceptMutex: "default", LogLevel: "info",
		LogFormat: "json", AccessLog: true, MaxConnections: DefaultMaxConnections,
	}
	if !reflect.DeepEqual(c.Server, want) {
		t.Errorf("Server = %+v\nwant %+v", c.Server, want)
	}
	e := c.Embedded
	if e.Name != "" || e.Processes != 1 || e.Threads != 15 || e.ProcessesSet || e.Multiprocess() {
		t.Errorf("Embedded = %+v", e)
	}
	if len(c.Daemons) != 0 || len(c.VHosts) != 0 || len(c.Files) != 1 {
		t.Errorf("daemons %v vhosts %v files %v", c.Daemons, c.VHosts, c.Files)
	}
}

func TestLoadDaemon(t *testing.T) {
	c, _ := loadTree(t, map[string]string{
		"00.toml": `
[embedded]
user = "www-data"
group = "www-data"
processes = 3

[daemon.site1]
processes = 1
threads = 25
umask = "0027"
home = "/srv/site1"
python-path = ["/srv/site1/lib"]
deadlock-timeout = 60
request-timeout = 30
display-name = "%{GROUP}"
memory-limit = 1000000

[daemon.plain]
user = "joe"
`})
	s := c.Daemons["site1"]
	if s.Processes != 1 || !s.ProcessesSet || !s.Multiprocess() || s.Threads != 25 || s.Umask != 0o027 || !s.UmaskSet ||
		s.User != "www-data" || s.Group != "www-data" || s.DeadlockTimeout != time.Minute ||
		s.RequestTimeout != 30*time.Second || s.ShutdownTimeout != 5*time.Second ||
		s.ProcessTitle() != "(wsgi:site1)" || s.MemoryLimit != 1000000 || s.Home != "/srv/site1" ||
		!reflect.DeepEqual(s.PythonPath, []string{"/srv/site1/lib"}) {
		t.Errorf("site1 = %+v", s)
	}
	p := c.Daemons["plain"]
	if p.ProcessesSet || p.Multiprocess() || p.Processes != 1 || p.User != "joe" || p.Group != "www-data" || p.UmaskSet {
		t.Errorf("plain = %+v", p)
	}
	if !c.Embedded.Multiprocess() || c.Embedded.Processes != 3 {
		t.Errorf("embedded = %+v", c.Embedded)
	}
}

func TestLoadNameOrderAndVHosts(t *testing.T) {
	c, dir := loadTree(t, map[string]string{
		"20-b.toml":    "[server]\nlog-level = \"warn\"\nenv = { B = \"2\", A = \"b\" }\n",
		"10-a.toml":    "[server]\nlog-level = \"debug\"\nlog-format = \"console\"\nenv = { A = \"1\" }\n",
		"30-site.toml": "[vhost]\nserver-name = \"WWW.Site1.com\"\nserver-alias = [\"site1.com\"]\nport = 8080\n[daemon.s1]\n",
		"notes.txt":    "ignored",
	})
	d := filepath.Join(dir, "conf.d")
	wantFiles := []string{filepath.Join(d, "10-a.toml"), filepath.Join(d, "20-b.toml"), filepath.Join(d, "30-site.toml")}
	if !reflect.DeepEqual(c.Files, wantFiles) {
		t.Errorf("Files = %v", c.Files)
	}
	if c.Server.LogLevel != "warn" || c.Server.LogFormat != "console" {
		t.Errorf("later file must win per key: %+v", c.Server)
	}
	if got := c.server.base[0].env; !reflect.DeepEqual(got, []EnvVar{{"A", "b"}, {"B", "2"}}) {
		t.Errorf("server env = %v", got)
	}
	if len(c.VHosts) != 1 {
		t.Fatalf("vhosts = %v", c.VHosts)
	}
	v := c.VHosts[0]
	if v.ServerName != "www.site1.com" || !reflect.DeepEqual(v.ServerAliases, []string{"site1.com"}) || v.Port != 8080 || v.File != wantFiles[2] {
		t.Errorf("vhost = %+v", v)
	}
	if c.Daemons["s1"].VHost != "www.site1.com" || c.Daemons["s1"].File != wantFiles[2] {
		t.Errorf("daemon s1 = %+v", c.Daemons["s1"])
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // each line of the joined error, "F:" stands for conf.d/
	}{
		{"unknown key", map[string]string{"10-site.toml": "[daemon.site1]\nprocesess = 2\n"},
			[]string{"F:10-site.toml: daemon.site1.procesess: unknown key"}},
		{"unknown table and array key", map[string]string{"a.toml": "[sever]\nx=1\n[[script-alias]]\nurl=\"/a\"\npath=\"/a.wsgi\"\nurll=\"/x\"\n"},
			[]string{"F:a.toml: sever: unknown key", "F:a.toml: script-alias[0].urll: unknown key"}},
		{"type error with line", map[string]string{"a.toml": "# c\n[daemon.site1]\n\nprocesses = \"two\"\n"},
			[]string{"F:a.toml:4: daemon.site1.processes: must be an integer, not a string"}},
		{"syntax error", map[string]string{"a.toml": "[server]\nlog-level = \n"},
			[]string{"F:a.toml:2: "}},
		{"collected across files", map[string]string{
			"a.toml": "[server]\npython-optimize = 3\nlog-format = \"xml\"\n",
			"b.toml": "[daemon.x]\nthreads = 0\numask = \"0999\"\nuser = \"#0\"\n",
		}, []string{
			"F:a.toml:2: server.python-optimize: 3: want 0, 1 or 2",
			"F:a.toml:3: server.log-format: \"xml\": want one of json, console",
			"F:b.toml:2: daemon.x.threads: 0: must be at least 1",
			"F:b.toml:3: daemon.x.umask: \"0999\" is not an octal mask like \"0022\"",
			"F:b.toml:4: daemon.x.user: workers never run as root",
		}},
		{"listen and enums", map[string]string{"a.toml": "[server]\nlisten = [\"unix:/r/s\", \"tcp:127.0.0.1\", \"udp:x\", \"fd:0\"]\nreload-mechanism = \"Interpreter\"\nauth-type = \"NTLM\"\nsocket-mode = \"rw\"\n"},
			[]string{
				"F:a.toml:2: server.listen[1]: \"tcp:127.0.0.1\": tcp: needs HOST:PORT",
				"F:a.toml:2: server.listen[2]: \"udp:x\": want unix:/path, tcp:HOST:PORT or fd:N",
				"F:a.toml:3: server.reload-mechanism: \"Interpreter\": want \"module\" or \"process\"",
				"F:a.toml:4: server.auth-type: \"NTLM\": want \"Basic\" or \"Digest\"",
				"F:a.toml:5: server.socket-mode: \"rw\" is not an octal mode like \"0660\"",
			}},
		{"web-server-addrs", map[string]string{"a.toml": "[server]\nweb-server-addrs = [\"127.0.0.1\", \"10.0.0.0/8\", \"::1\", \"localhost\"]\n"},
			[]string{"F:a.toml:2: server.web-server-addrs[3]: \"localhost\" is not an IP address or CIDR prefix"}},
		{"max-connections", map[string]string{
			"a.toml": "[server]\nmax-connections = 0\n",
			"b.toml": "[server]\nmax-connections = 2000000\n",
			"c.toml": "[server]\nmax-connections = \"many\"\n",
		}, []string{
			"F:a.toml:2: server.max-connections: 0: want 1..1048576",
			"F:b.toml:2: server.max-connections: 2000000: want 1..1048576",
			"F:c.toml:2: server.max-connections: must be an integer, not a string",
		}},
		{"duplicate daemon across files", map[string]string{
			"a.toml": "[daemon.site1]\n",
			"b.toml": "[vhost]\nserver-name = \"x\"\n\n[daemon.site1]\n",
		}, []string{"F:b.toml:4: daemon.site1: duplicate daemon name (first defined in F:a.toml)"}},
		{"undefined literal process group", map[string]string{"a.toml": "[[location]]\nurl = \"/x\"\nprocess-group = \"nope\"\n"},
			[]string{"F:a.toml:3: process-group: daemon \"nope\" is not defined"}},
		{"regex and overlap", map[string]string{"a.toml": `
[[script-alias-match]]
regex = "^/(x"
path = "/s/$1.wsgi"

[[script-alias]]
url = "/app"
path = "/s/a.wsgi"

[[script-alias]]
url = "//app/"
path = "/s/b.wsgi"
`}, []string{
			"F:a.toml:3: script-alias-match[0].regex: error parsing regexp: missing closing ): `^/(x`",
			"F:a.toml:11: script-alias[1].url: \"//app/\" overlaps the script-alias at F:a.toml:6",
		}},
		{"vhost file rules", map[string]string{"v.toml": "[vhost]\nport = 70000\n[server]\nlog-level = \"info\"\n"},
			[]string{
				"F:v.toml:1: vhost.server-name: required in a [vhost]",
				"F:v.toml:2: vhost.port: 70000: want 0..65535",
				"F:v.toml:3: server: not allowed in a [vhost] file (context keys go in [vhost])",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{}
			for n, b := range tt.files {
				files["conf.d/"+n] = b
			}
			writeTree(t, dir, files)
			c, err := Load(filepath.Join(dir, "conf.d"))
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			got := strings.Split(strings.ReplaceAll(err.Error(), filepath.Join(dir, "conf.d")+"/", "F:"), "\n")
			if strings.HasSuffix(tt.want[0], ": ") { // syntax errors: only the location is ours
				if len(got) != 1 || !strings.HasPrefix(got[0], tt.want[0]) {
					t.Errorf("got %q, want prefix %q", got, tt.want[0])
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadMissingPath(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope"))
	if err == nil || !strings.HasSuffix(err.Error(), "nope: no such file or directory") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadWarnsCrossVHostDaemon(t *testing.T) {
	c, dir := loadTree(t, map[string]string{
		"00.toml": "[[location]]\nurl = \"/x\"\nprocess-group = \"s1\"\n",
		"10.toml": "[vhost]\nserver-name = \"a.com\"\n[daemon.s1]\n",
		"20.toml": "[vhost]\nserver-name = \"b.com\"\nprocess-group = \"s1\"\n",
		"30.toml": "[vhost]\nserver-name = \"A.com\"\nport = 443\nprocess-group = \"s1\"\n",
	})
	d := filepath.Join(dir, "conf.d") + "/"
	want := []string{
		d + "20.toml:3: process-group: daemon \"s1\" belongs to vhost a.com; selecting it from vhost b.com fails with 500",
		d + "00.toml:3: process-group: daemon \"s1\" belongs to vhost a.com; selecting it from the server context fails with 500",
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("warnings:\n%s", strings.Join(c.Warnings, "\n"))
	}
}

func TestImportScripts(t *testing.T) {
	c, _ := loadTree(t, map[string]string{
		"00.toml": "[daemon.site1]\n[[import-script]]\npath = \"/srv/a.wsgi\"\nprocess-group = \"site1\"\napplication-group = \"%{GLOBAL}\"\n" +
			"[[import-script]]\npath = \"/srv/b.wsgi\"\nprocess-group = \"%{GLOBAL}\"\napplication-group = \"admin\"\n",
	})
	want := []ImportScript{{"/srv/a.wsgi", "site1", "", ""}, {"/srv/b.wsgi", "", "admin", ""}}
	if got := c.ImportScripts(); !reflect.DeepEqual(got, want) {
		t.Errorf("ImportScripts = %+v", got)
	}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.toml": "[[import-script]]\npath = \"/a\"\nprocess-group = \"x\"\napplication-group = \"g\"\n"})
	if _, err := Load(filepath.Join(dir, "a.toml")); err == nil || !strings.Contains(err.Error(), `a.toml:3: import-script[0].process-group: daemon "x" is not defined`) {
		t.Errorf("err = %v", err)
	}
}

func TestScanPositions(t *testing.T) {
	src := "a = 1\n[t]\nb = \"\"\"\nx = 2\n\"\"\"\nc = [\n 1,\n]\n[[arr]]\nk = 1\n[[arr]]\nk = 2\n[arr.sub]\nq = 1\n[\"q.d\".'x']\nz = 1\n"
	pos := scanPositions(src)
	for path, line := range map[string]int{
		"a": 1, "t": 2, "t\x00b": 3, "t\x00c": 6, "arr\x000\x00k": 10, "arr\x001\x00k": 12,
		"arr\x001\x00sub\x00q": 14, "q.d\x00x\x00z": 16,
	} {
		if pos[path] != line {
			t.Errorf("%q at %d, want %d", path, pos[path], line)
		}
	}
	if _, ok := pos["t\x00x"]; ok {
		t.Error("key inside a multi-line string recorded")
	}
}

func TestLoadRelativePaths(t *testing.T) {
	c, dir := loadTree(t, map[string]string{
		"00.toml": "[[script-alias]]\nurl = \"/d/\"\npath = \"../scripts/\"\n[[script-alias]]\nurl = \"/\"\npath = \"../app.wsgi\"\n" +
			"[[directory]]\npath = \"../scripts\"\nauth-user-script = \"auth.wsgi\"\n[daemon.x]\nhome = \"/abs\"\npython-path = [\"lib\"]\n",
	}, "app.wsgi", "scripts/s.wsgi")
	r, status := routeStatus(t, c, params{"REQUEST_URI": "/x"})
	if status != 0 || r.ScriptFilename != filepath.Join(dir, "app.wsgi") {
		t.Errorf("root: %d %+v", status, r)
	}
	r, status = routeStatus(t, c, params{"REQUEST_URI": "/d/s.wsgi"})
	if status != 0 || r.ScriptFilename != filepath.Join(dir, "scripts/s.wsgi") || r.Auth.UserScript != filepath.Join(dir, "conf.d/auth.wsgi") {
		t.Errorf("dir form: %d %+v", status, r)
	}
	if d := c.Daemons["x"]; d.Home != "/abs" || !reflect.DeepEqual(d.PythonPath, []string{filepath.Join(dir, "conf.d/lib")}) {
		t.Errorf("daemon %+v", d)
	}
}

// max-connections: the default, a value, and the last file winning.
func TestLoadMaxConnections(t *testing.T) {
	c, _ := loadTree(t, map[string]string{"00.toml": "[server]\n"})
	if c.Server.MaxConnections != DefaultMaxConnections {
		t.Errorf("default max-connections = %d, want %d", c.Server.MaxConnections, DefaultMaxConnections)
	}
	c, _ = loadTree(t, map[string]string{
		"10.toml": "[server]\nmax-connections = 100\n",
		"20.toml": "[server]\nmax-connections = 50000\n",
	})
	if c.Server.MaxConnections != 50000 {
		t.Errorf("max-connections = %d, want 50000", c.Server.MaxConnections)
	}
}

// An alias after one that takes every path it would can never match:
// check warns with both places. A vhost's own alias overriding an
// inherited one is not a warning.
func TestLoadWarnsShadowedAlias(t *testing.T) {
	c, dir := loadTree(t, map[string]string{
		"00.toml": "[[script-alias]]\nurl = \"/\"\npath = \"/srv/site.wsgi\"\n\n" +
			"[[script-alias]]\nurl = \"/dav\"\npath = \"/srv/dav.wsgi\"\n\n" +
			"[[script-alias-match]]\nregex = \"^/m/(.+)\"\npath = \"/srv/$1.wsgi\"\n",
		"10.toml": "[vhost]\nserver-name = \"a.com\"\n\n" +
			"[[script-alias]]\nurl = \"/app\"\npath = \"/srv/app.wsgi\"\n\n" +
			"[[script-alias]]\nurl = \"/app/admin\"\npath = \"/srv/admin.wsgi\"\n\n" +
			"[[script-alias]]\nurl = \"/appx\"\npath = \"/srv/appx.wsgi\"\n\n" +
			"[[script-alias]]\nurl = \"/dav\"\npath = \"/srv/vdav.wsgi\"\n",
	})
	d := filepath.Join(dir, "conf.d") + "/"
	want := []string{
		d + `00.toml:5: script-alias[1]: "/dav" can never match: the script-alias "/" at ` + d + `00.toml:1 comes first and takes every path under it; list the longer one first`,
		d + `00.toml:9: script-alias-match[0]: "^/m/(.+)" can never match: the script-alias "/" at ` + d + `00.toml:1 comes first and takes every path under it; list the longer one first`,
		d + `10.toml:8: script-alias[1]: "/app/admin" can never match: the script-alias "/app" at ` + d + `10.toml:4 comes first and takes every path under it; list the longer one first`,
	}
	if !reflect.DeepEqual(c.Warnings, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(c.Warnings, "\n"), strings.Join(want, "\n"))
	}
}
