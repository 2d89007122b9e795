package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// What real Apache 2.4 + mod_wsgi 4.9.4 gives, through nginx: the trailing
// slash mount, a directory mount's own URL, httpoxy, the 4.x environ keys.
func TestModWSGI4RoutingAndEnviron(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	scripts := filepath.Join(dir, "scripts")
	os.MkdirAll(scripts, 0o755)
	b, _ := os.ReadFile(filepath.Join(apps, "app.wsgi"))
	os.WriteFile(filepath.Join(scripts, "env.wsgi"), b, 0o644)
	conf := directivesConf(apps, "", alias(apps, "/trail/", "")+
		fmt.Sprintf("\n[[script-alias]]\nurl = \"/scripts/\"\npath = %q\n", scripts+"/")+
		daemonConf("d4", "processes = 2")+alias(apps, "/daemon", "process-group = \"d4\""))
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, nginxFastCGI)

	env := func(path string, hdr map[string]string) map[string]any {
		t.Helper()
		code, body := fetch(t, "GET", n.url+path, "", hdr)
		var m map[string]any
		if code != 200 || json.Unmarshal([]byte(body), &m) != nil {
			t.Fatalf("GET %s = %d %q", path, code, body)
		}
		return m
	}

	t.Run("TrailingSlashMount", func(t *testing.T) {
		m := env("/trail/", nil)
		if m["SCRIPT_NAME"] != "/trail/" || m["PATH_INFO"] != "" {
			t.Errorf("GET /trail/: SCRIPT_NAME %q PATH_INFO %q, want '/trail/' and ''", m["SCRIPT_NAME"], m["PATH_INFO"])
		}
	})
	t.Run("DirectoryMountItselfIs403", func(t *testing.T) {
		wantStatus(t, n.url+"/scripts/", 403)
		if m := env("/scripts/env.wsgi/x", nil); m["SCRIPT_NAME"] != "/scripts/env.wsgi" || m["PATH_INFO"] != "/x" {
			t.Errorf("a script in the directory: %q %q", m["SCRIPT_NAME"], m["PATH_INFO"])
		}
	})
	t.Run("Httpoxy", func(t *testing.T) {
		m := env("/trail/", map[string]string{"Proxy": "http://evil.example:3128", "X-Other": "kept"})
		if v, ok := m["HTTP_PROXY"]; ok {
			t.Errorf("HTTP_PROXY reached the application: %q", v)
		}
		if m["HTTP_X_OTHER"] != "kept" {
			t.Errorf("other headers: HTTP_X_OTHER = %v", m["HTTP_X_OTHER"])
		}
	})
	t.Run("EnvironKeys", func(t *testing.T) {
		m := env("/trail/", nil)
		for k, want := range map[string]any{"mod_wsgi.ignore_activity": "0", "mod_wsgi.enable_sendfile": "0"} {
			if m[k] != want {
				t.Errorf("%s = %v, want %v", k, m[k], want)
			}
		}
		for _, k := range []string{"mod_wsgi.thread_id", "mod_wsgi.thread_requests", "mod_wsgi.total_requests"} {
			if _, ok := m[k].(float64); !ok { // a JSON number: an int in Python
				t.Errorf("%s = %#v, want an int", k, m[k])
			}
		}
		if v, _ := m["mod_wsgi.script_start"].(string); len(v) < 16 {
			t.Errorf("mod_wsgi.script_start = %#v, want µs since the epoch as a string", m["mod_wsgi.script_start"])
		}
		if _, ok := m["mod_wsgi.daemon_connects"]; ok {
			t.Errorf("daemon_connects in the embedded group")
		}
		d := env("/daemon", nil)
		if d["mod_wsgi.daemon_connects"] != "1" || d["mod_wsgi.process_group"] != "d4" {
			t.Errorf("daemon group: daemon_connects %#v process_group %#v", d["mod_wsgi.daemon_connects"], d["mod_wsgi.process_group"])
		}
	})
}

// A script the workers' user cannot read, or that lies in a directory it
// cannot enter, is a 403 whose log line names that user and the path,
// checked as that user even when the bridge (root) could read it; serve
// and check say so at start, with the fix.
func TestScriptUnreadableByWorkerUser(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	b, _ := os.ReadFile(filepath.Join(apps, "app.wsgi"))
	secret := filepath.Join(dir, "secret.wsgi")
	os.WriteFile(secret, b, 0o644)
	private := filepath.Join(dir, "private")
	os.Mkdir(private, 0o755)
	hidden := filepath.Join(private, "app.wsgi")
	os.WriteFile(hidden, b, 0o644)
	workerName := "nobody (uid 65534)"
	if os.Geteuid() == 0 {
		os.Chmod(secret, 0o600) // root's only
		os.Chmod(private, 0o700)
	} else {
		// The workers run as the bridge's user: a file it may not read.
		os.Chmod(secret, 0o200)
		private, hidden = "", ""
		workerName = ""
	}
	conf := directivesConf(apps, "", alias(apps, "/ok", "")) +
		fmt.Sprintf("\n[[script-alias]]\nurl = \"/secret\"\npath = %q\n", secret)
	if hidden != "" {
		conf += fmt.Sprintf("\n[[script-alias]]\nurl = \"/private\"\npath = %q\n", hidden)
	}
	confDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(confDir, 0o755)
	os.WriteFile(filepath.Join(confDir, "00-test.toml"), []byte(conf), 0o644)
	out, err := exec.Command(binPath, "check", "-c", confDir).CombinedOutput()
	if err != nil {
		t.Fatalf("check: %v\n%s", err, out)
	}
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, nginxFastCGI)

	type want struct{ url, path, problem string }
	cases := []want{{"/secret", secret, "cannot read " + secret}}
	if hidden != "" {
		cases = append(cases, want{"/private", hidden, "cannot enter " + private})
	}
	for _, c := range cases {
		for what, text := range map[string]string{"check": string(out), "serve": s.log.String()} {
			if !strings.Contains(text, c.path+": the workers of process group %{GLOBAL} run as "+workerName) ||
				!strings.Contains(text, c.problem) || !strings.Contains(text, "Fix: ") {
				t.Errorf("%s does not warn about %s (%s):\n%s", what, c.path, c.problem, text)
			}
		}
		wantStatus(t, n.url+c.url, 403)
		line := "script " + c.path + " is not readable by the worker user " + workerName
		if !s.waitLog(line, 5*time.Second) || !s.waitLog(c.problem, time.Second) {
			t.Errorf("no log line %q ... %q", line, c.problem)
		}
	}
	wantStatus(t, n.url+"/ok", 200)
	ok := filepath.Join(apps, "app.wsgi") + ": the workers"
	if strings.Contains(string(out), ok) || len(s.log.lines(ok)) != 0 {
		t.Errorf("a readable script was warned about")
	}
}

// auth-application-group is mod_wsgi's application-group= option of
// WSGIAuthUserScript and friends: the interpreter (here: the pool) of the
// embedded processes that the auth script runs in; %{GLOBAL} by default.
func TestAuthScriptApplicationGroup(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	auth := filepath.Join(dir, "auth.wsgi")
	// The password a user must give is where the script runs: the worker
	// process's application group, then the environ's.
	os.WriteFile(auth, []byte(`import sys
def check_password(environ, user, password):
    return password == "%s|%s" % (sys.modules["mod_wsgi"].application_group, environ["mod_wsgi.application_group"])
`), 0o644)
	protect := fmt.Sprintf("auth-type = \"Basic\"\nauth-name = \"x\"\nrequire = [\"valid-user\"]\nauth-user-script = %q\n", auth)
	conf := directivesConf(apps, "", alias(apps, "/grp", protect+"auth-application-group = \"authgrp\"\n")+
		alias(apps, "/res", protect+"auth-application-group = \"%{RESOURCE}\"\n")+alias(apps, "/global", protect))
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, nginxFastCGI)
	for _, c := range []struct{ url, pass string }{
		{"/grp", "authgrp|authgrp"}, {"/res", "localhost|/res|localhost|/res"}, {"/global", "|"},
	} {
		if code, _, body := request(t, n.url+c.url, "u", c.pass); code != 200 {
			t.Errorf("%s with %q: %d %q, want 200", c.url, c.pass, code, body)
		}
		if code, _, _ := request(t, n.url+c.url, "u", "|x"); code != 401 {
			t.Errorf("%s with a wrong password: %d, want 401", c.url, code)
		}
	}
}
