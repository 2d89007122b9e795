package integration

// End-to-end tests of the mod_wsgi directives as TOML (issue 3): each runs
// the real binary with real Python workers, behind nginx or the --http front
// end, or spoken to in raw FastCGI where a front end would hide the case.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// directivesApps copies testdata/directives (with its subdirectories) into
// dir/d and returns the copy's path.
func directivesApps(t *testing.T, dir string) string {
	t.Helper()
	src, dst := "testdata/directives", filepath.Join(dir, "d")
	err := filepath.WalkDir(src, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// directivesConf is the server context every test starts from: the
// directives app's lib on python-path, a worker user; body follows.
func directivesConf(apps, server, body string) string {
	return fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"
log-level = "debug"
python-path = [%q]
%s
[embedded]
threads = 2
%s
%s`, python, filepath.Join(apps, "lib"), server, workerUser(), body)
}

// alias is one [[script-alias]] of app.wsgi with extra context lines.
func alias(apps, url, extra string) string {
	return fmt.Sprintf("\n[[script-alias]]\nurl = %q\npath = %q\n%s\n", url, filepath.Join(apps, "app.wsgi"), extra)
}

// daemonConf is a [daemon.NAME] table run as the worker user.
func daemonConf(name, extra string) string {
	return fmt.Sprintf("\n[daemon.%s]\nthreads = 2\n%s%s\n", name, workerUser(), extra)
}

// httpFrontEnd starts wsgifcgi with the --http front end and returns its URL.
func httpFrontEnd(t *testing.T, dir, conf string) (*server, string) {
	t.Helper()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := startServer(t, dir, conf, "--http", addr)
	waitTCP(t, addr, s.done, s.log)
	return s, "http://" + addr
}

// fetch does one request with an optional Host and headers.
func fetch(t *testing.T, method, url, host string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return resp.StatusCode, string(b)
}

// getJSON expects a 200 with a JSON object.
func getJSON(t *testing.T, url, host string, hdr map[string]string) map[string]any {
	t.Helper()
	code, body := fetch(t, "GET", url, host, hdr)
	if code != 200 {
		t.Fatalf("GET %s (Host %q) = %d %q", url, host, code, body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("GET %s: %v in %q", url, err, body)
	}
	return m
}

func wantStatus(t *testing.T, url string, want int) string {
	t.Helper()
	code, body := fetch(t, "GET", url, "", nil)
	if code != want {
		t.Errorf("GET %s = %d %q, want %d", url, code, body, want)
	}
	return body
}

// fcgiParam is one FastCGI name-value pair, in order.
type fcgiParam struct{ name, value string }

// fcgiResponse is a parsed CGI response.
type fcgiResponse struct {
	status int
	header textproto.MIMEHeader
	body   string
}

// fcgiRequest encodes request 1 (a responder, connection closed after):
// its params and stdin, and the empty STDIN record only when end.
func fcgiRequest(ps []fcgiParam, stdin []byte, end bool) []byte {
	var out bytes.Buffer
	record := func(typ byte, content []byte) {
		for first := true; first || len(content) > 0; first = false {
			n := min(len(content), 65535)
			out.Write([]byte{1, typ, 0, 1, byte(n >> 8), byte(n), 0, 0})
			out.Write(content[:n])
			content = content[n:]
		}
	}
	record(1, []byte{0, 1, 0, 0, 0, 0, 0, 0}) // BEGIN_REQUEST, responder, close after
	record(4, encodeParams(ps))
	record(4, nil)
	if len(stdin) > 0 {
		record(5, stdin)
	}
	if end {
		record(5, nil)
	}
	return out.Bytes()
}

// encodeParams is the PARAMS content of ps (FastCGI name-value pairs).
func encodeParams(ps []fcgiParam) []byte {
	var pb bytes.Buffer
	size := func(n int) {
		if n < 128 {
			pb.WriteByte(byte(n))
		} else {
			binary.Write(&pb, binary.BigEndian, uint32(n)|1<<31)
		}
	}
	for _, p := range ps {
		size(len(p.name))
		size(len(p.value))
		pb.WriteString(p.name)
		pb.WriteString(p.value)
	}
	return pb.Bytes()
}

// fcgiDo sends one responder request by hand on the unix socket sock: the
// params as given (no CONTENT_LENGTH unless listed) and body on stdin.
func fcgiDo(t *testing.T, sock string, ps []fcgiParam, body []byte) fcgiResponse {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(fcgiRequest(ps, body, true)); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	r := bufio.NewReader(c)
	for {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			t.Fatalf("raw FastCGI: reading a record header: %v (stdout so far %q)", err, stdout.String())
		}
		n, pad := int(h[4])<<8|int(h[5]), int(h[6])
		content := make([]byte, n+pad)
		if _, err := io.ReadFull(r, content); err != nil {
			t.Fatal(err)
		}
		if h[1] == 6 { // STDOUT
			stdout.Write(content[:n])
		}
		if h[1] == 3 { // END_REQUEST
			break
		}
	}
	tp := textproto.NewReader(bufio.NewReader(&stdout))
	hdr, err := tp.ReadMIMEHeader()
	if err != nil {
		t.Fatalf("raw FastCGI: bad CGI response head: %v", err)
	}
	rest, _ := io.ReadAll(tp.R)
	res := fcgiResponse{status: 200, header: hdr, body: string(rest)}
	if st := hdr.Get("Status"); st != "" {
		res.status, _ = strconv.Atoi(strings.Fields(st)[0])
	}
	return res
}

// fcgiGet is the params of a plain GET of uri.
func fcgiGet(uri string, extra ...fcgiParam) []fcgiParam {
	return append([]fcgiParam{
		{"REQUEST_METHOD", "GET"}, {"REQUEST_URI", uri}, {"QUERY_STRING", ""},
		{"SERVER_NAME", "localhost"}, {"SERVER_PORT", "80"}, {"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REMOTE_ADDR", "127.0.0.1"}, {"GATEWAY_INTERFACE", "CGI/1.1"},
	}, extra...)
}

// 1. One worker process per (process group, application group): two groups
// of one daemon have their own module globals, also in imported modules;
// two %{GLOBAL} aliases share them.
func TestDirectiveApplicationGroupIsolation(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	conf := directivesConf(apps, "", daemonConf("iso", "")+
		alias(apps, "/one", `process-group = "iso"`+"\n"+`application-group = "one"`)+
		alias(apps, "/two", `process-group = "iso"`+"\n"+`application-group = "two"`)+
		alias(apps, "/g1", `process-group = "iso"`+"\n"+`application-group = "%{GLOBAL}"`)+
		alias(apps, "/g2", `process-group = "iso"`+"\n"+`application-group = "%{GLOBAL}"`))
	_, url := httpFrontEnd(t, dir, conf)

	count := func(path string) (int, int, int) {
		m := getJSON(t, url+path+"/count", "", nil)
		return int(m["count"].(float64)), int(m["helper"].(float64)), int(m["pid"].(float64))
	}
	var pidOne, pidTwo int
	for i := 1; i <= 3; i++ {
		c, h, pid := count("/one")
		if c != i || h != i {
			t.Fatalf("/one request %d: count %d helper %d", i, c, h)
		}
		pidOne = pid
	}
	for i := 1; i <= 2; i++ {
		c, h, pid := count("/two")
		if c != i || h != i {
			t.Fatalf("/two request %d: count %d helper %d: the application groups share globals", i, c, h)
		}
		pidTwo = pid
	}
	if pidOne == pidTwo {
		t.Fatalf("application groups one and two ran in one process (pid %d)", pidOne)
	}
	var pids []int
	for i, p := range []string{"/g1", "/g2", "/g1", "/g2"} {
		c, h, pid := count(p)
		if c != i+1 || h != i+1 {
			t.Fatalf("%s (request %d over both %%{GLOBAL} aliases): count %d helper %d, want %d", p, i+1, c, h, i+1)
		}
		pids = append(pids, pid)
	}
	for _, pid := range pids[1:] {
		if pid != pids[0] {
			t.Fatalf("%%{GLOBAL} aliases served by pids %v, want one", pids)
		}
	}
	if pids[0] == pidOne || pids[0] == pidTwo {
		t.Fatalf("%%{GLOBAL} shares pid %d with a named application group", pids[0])
	}
}

// 2. mod_wsgi.application_group / process_group as mod_wsgi expands them,
// with nginx passing the Host header with its port.
func TestDirectiveGroupNamesInEnviron(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	conf := directivesConf(apps, "", daemonConf("d1", "")+
		alias(apps, "/srv", `application-group = "%{SERVER}"`)+
		alias(apps, "/Res/Sub", `application-group = "%{RESOURCE}"`)+
		alias(apps, "/glob", `application-group = "%{GLOBAL}"`)+
		alias(apps, "/lit", `application-group = "my-literal-group"`)+
		alias(apps, "/envctx", `application-group = "%{ENV:APPG}"`+"\n"+`env = { APPG = "from-context-env" }`)+
		alias(apps, "/envparam", `application-group = "%{ENV:APPG_PARAM}"`)+
		alias(apps, "/envunset", `application-group = "%{ENV:WSGIFCGI_TEST_UNSET}"`)+
		alias(apps, "/envbridge", `application-group = "%{ENV:WSGIFCGI_TEST_APPG}"`)+
		alias(apps, "/daemon", `process-group = "d1"`)+
		alias(apps, "/host", `application-group = "%{HOST}"`)+
		alias(apps, "/", "")+`
[[location]]
url = "/lit/inner"
application-group = "from-location"
`)
	t.Setenv("WSGIFCGI_TEST_APPG", "from-the-bridge-environment") // the last resort of %{ENV:...}
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, `
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param HTTP_HOST $http_host;
            fastcgi_param APPG_PARAM from-nginx-param;
            fastcgi_pass wsgifcgi;
        }
`)
	const host = "localhost:8080"
	cases := []struct{ path, app, proc string }{
		{"/srv/env", "localhost:8080", ""},
		{"/Res/Sub/env", "localhost:8080|/res/sub", ""},
		{"/env", "localhost:8080|", ""},
		{"/glob/env", "", ""},
		{"/lit/env", "my-literal-group", ""},
		{"/lit/inner/env", "from-location", ""}, // a [[location]] is more specific than its alias
		{"/envctx/env", "from-context-env", ""},
		{"/envparam/env", "from-nginx-param", ""},
		{"/envunset/env", "%{ENV:WSGIFCGI_TEST_UNSET}", ""},
		{"/envbridge/env", "from-the-bridge-environment", ""},
		{"/daemon/env", "localhost:8080|/daemon", "d1"},
	}
	for _, c := range cases {
		env := getJSON(t, n.url+c.path, host, nil)
		if env["mod_wsgi.application_group"] != c.app || env["mod_wsgi.process_group"] != c.proc {
			t.Errorf("GET %s (Host %s): application_group %q process_group %q, want %q %q",
				c.path, host, env["mod_wsgi.application_group"], env["mod_wsgi.process_group"], c.app, c.proc)
		}
		if c.path == "/srv/env" {
			if env["HTTP_HOST"] != host {
				t.Errorf("HTTP_HOST = %q, want %q (nginx: fastcgi_param HTTP_HOST $http_host after the stock params)", env["HTTP_HOST"], host)
			}
			v, ok := env["mod_wsgi.version"].([]any)
			if !ok || len(v) != 3 {
				t.Errorf("mod_wsgi.version = %#v, want a tuple like (4, 9, 4)", env["mod_wsgi.version"])
			}
			for k := range env {
				if strings.HasPrefix(k, "mod_wsgi.") && env[k] == nil {
					t.Errorf("%s is None", k)
				}
			}
		}
		if c.proc != "" {
			for _, k := range []string{"mod_wsgi.queue_start", "mod_wsgi.daemon_start", "mod_wsgi.daemon_restarts"} {
				if _, ok := env[k]; !ok {
					t.Errorf("daemon environ lacks %s", k)
				}
			}
		}
	}
	// Host without a port (and port 80) leaves the port out.
	for _, h := range []string{"localhost", "localhost:80"} {
		if env := getJSON(t, n.url+"/Res/Sub/env", h, nil); env["mod_wsgi.application_group"] != "localhost|/res/sub" {
			t.Errorf("Host %s: %%{RESOURCE} = %q, want localhost|/res/sub", h, env["mod_wsgi.application_group"])
		}
	}
	// The same by a direct FastCGI request: NAME is SERVER_NAME, the port from HTTP_HOST.
	res := fcgiDo(t, s.sock, fcgiGet("/Res/Sub/env", fcgiParam{"HTTP_HOST", "www.example.com:8080"},
		fcgiParam{"SERVER_NAME", "www.example.com"}), nil)
	var env map[string]any
	if err := json.Unmarshal([]byte(res.body), &env); res.status != 200 || err != nil {
		t.Fatalf("raw FastCGI: %d %q", res.status, res.body)
	}
	if env["mod_wsgi.application_group"] != "www.example.com:8080|/res/sub" {
		t.Errorf("raw FastCGI: %%{RESOURCE} = %q", env["mod_wsgi.application_group"])
	}
	// %{HOST} is the Host header's name, lower-cased, with its port.
	res = fcgiDo(t, s.sock, fcgiGet("/host/env", fcgiParam{"HTTP_HOST", "WWW.Other.Example:8443"}), nil)
	if err := json.Unmarshal([]byte(res.body), &env); res.status != 200 || err != nil ||
		env["mod_wsgi.application_group"] != "www.other.example:8443" {
		t.Errorf("raw FastCGI: %%{HOST} = %d %q", res.status, env["mod_wsgi.application_group"])
	}
}

// 3. process-group = "%{ENV:PROCESS_GROUP}" from an nginx fastcgi_param and
// from a [[directory]] env table; wsgi.multiprocess follows "processes set".
func TestDirectiveProcessGroupFromEnv(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	sub := filepath.Join(apps, "site3")
	os.MkdirAll(sub, 0o755)
	b, _ := os.ReadFile(filepath.Join(apps, "app.wsgi"))
	os.WriteFile(filepath.Join(sub, "app.wsgi"), b, 0o644)
	conf := directivesConf(apps, "", daemonConf("site2", "processes = 1\n")+daemonConf("site3", "")+
		alias(apps, "/site2", `process-group = "%{ENV:PROCESS_GROUP}"`)+
		fmt.Sprintf(`
[[script-alias]]
url = "/site3"
path = %q
process-group = "%%{ENV:PROCESS_GROUP}"

[[script-alias]]
url = "/site3-as-site2"
path = %[1]q
process-group = "site2"

[[directory]]
path = %[2]q
env = { PROCESS_GROUP = "site3" }
restrict-process = ["site3"]
`, filepath.Join(sub, "app.wsgi"), sub)+
		alias(apps, "/", ""))
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, `
        location /site2/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param PROCESS_GROUP site2;
            fastcgi_pass wsgifcgi;
        }
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass wsgifcgi;
        }
`)
	e2 := getJSON(t, n.url+"/site2/env", "", nil)
	e3 := getJSON(t, n.url+"/site3/env", "", nil)
	eg := getJSON(t, n.url+"/env", "", nil)
	if e2["mod_wsgi.process_group"] != "site2" || e2["wsgi.multiprocess"] != true || e2["PROCESS_GROUP"] != "site2" {
		t.Errorf("/site2: process_group %q multiprocess %v PROCESS_GROUP %q, want site2 true site2",
			e2["mod_wsgi.process_group"], e2["wsgi.multiprocess"], e2["PROCESS_GROUP"])
	}
	if e3["mod_wsgi.process_group"] != "site3" || e3["wsgi.multiprocess"] != false || e3["PROCESS_GROUP"] != "site3" {
		t.Errorf("/site3: process_group %q multiprocess %v PROCESS_GROUP %q, want site3 false site3",
			e3["mod_wsgi.process_group"], e3["wsgi.multiprocess"], e3["PROCESS_GROUP"])
	}
	if eg["mod_wsgi.process_group"] != "" || eg["wsgi.multiprocess"] != false {
		t.Errorf("/: process_group %q multiprocess %v, want the embedded pool", eg["mod_wsgi.process_group"], eg["wsgi.multiprocess"])
	}
	// The directory's restrict-process holds against the alias's choice.
	wantStatus(t, n.url+"/site3-as-site2/env", 500)
	if e2["pid"] == e3["pid"] || e2["pid"] == eg["pid"] {
		t.Errorf("pids site2 %v site3 %v embedded %v: not separate processes", e2["pid"], e3["pid"], eg["pid"])
	}
}

// 4. restrict-process, restrict-embedded and a daemon of another vhost are
// refused with a 500 at request time.
func TestDirectiveRefusals(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	conf := directivesConf(apps, "restrict-embedded = true\n", daemonConf("allowed", "")+daemonConf("other", "")+
		alias(apps, "/restricted", `process-group = "other"`+"\n"+`restrict-process = ["allowed"]`)+
		alias(apps, "/permitted", `process-group = "allowed"`+"\n"+`restrict-process = ["allowed"]`)+
		alias(apps, "/embedded", ""))
	confDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(confDir, 0o755)
	os.WriteFile(filepath.Join(confDir, "10-a.toml"), []byte(fmt.Sprintf(`
[vhost]
server-name = "a.test"
server-alias = ["alias-a.test"]
%s%s`, daemonConf("adaemon", ""), alias(apps, "/a", `process-group = "adaemon"`))), 0o644)
	os.WriteFile(filepath.Join(confDir, "20-b.toml"), []byte(fmt.Sprintf(`
[vhost]
server-name = "b.test"
%s%s`, alias(apps, "/b", `process-group = "adaemon"`), alias(apps, "/benv", `process-group = "%{ENV:PG}"`+"\n"+`env = { PG = "adaemon" }`))), 0o644)

	// The server context (with the worker user) as startServer writes it.
	os.WriteFile(filepath.Join(confDir, "00-test.toml"), []byte(conf), 0o644)
	out, err := exec.Command(binPath, "check", "-c", confDir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "adaemon") || !strings.Contains(string(out), "warning") {
		t.Errorf("check: %v, want exit 0 and a warning about adaemon selected from b.test:\n%s", err, out)
	}

	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, `
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SERVER_NAME $host;
            fastcgi_pass wsgifcgi;
        }
`)
	wantStatus(t, n.url+"/restricted/env", 500)
	if env := getJSON(t, n.url+"/permitted/env", "", nil); env["mod_wsgi.process_group"] != "allowed" {
		t.Errorf("/permitted ran in %q", env["mod_wsgi.process_group"])
	}
	wantStatus(t, n.url+"/embedded/env", 500)
	for _, h := range []string{"a.test", "alias-a.test"} {
		// %{RESOURCE} names the vhost by its server-name, never an alias.
		if env := getJSON(t, n.url+"/a/env", h, nil); env["mod_wsgi.process_group"] != "adaemon" || env["mod_wsgi.application_group"] != "a.test|/a" {
			t.Errorf("Host %s /a: process_group %q application_group %q", h, env["mod_wsgi.process_group"], env["mod_wsgi.application_group"])
		}
	}
	for _, p := range []string{"/b/env", "/benv/env"} {
		if code, body := fetch(t, "GET", n.url+p, "b.test", nil); code != 500 {
			t.Errorf("b.test %s selecting a.test's daemon = %d %q, want 500", p, code, body)
		}
	}
	for _, msg := range []string{"restrict-process", "restrict-embedded", "belongs to vhost a.test"} {
		if !s.waitLog(msg, 5*time.Second) {
			t.Errorf("no log line mentioning %q", msg)
		}
	}
}

// 5 and 6. callable-object, a missing callable, pass-authorization.
func TestDirectiveCallableAndPassAuthorization(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	conf := directivesConf(apps, "",
		alias(apps, "/app2", `callable-object = "app2"`)+
			alias(apps, "/nocall", `callable-object = "no_such_callable"`)+
			alias(apps, "/envcall", `callable-object = "%{ENV:CALLABLE}"`+"\n"+`env = { CALLABLE = "app2" }`)+
			alias(apps, "/auth", `pass-authorization = true`)+
			alias(apps, "/", ""))
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, nginxFastCGI)
	if code, body := fetch(t, "GET", n.url+"/app2/x", "", nil); code != 200 || body != "this is app2\n" {
		t.Errorf("callable-object app2: %d %q", code, body)
	}
	if code, body := fetch(t, "GET", n.url+"/envcall/x", "", nil); code != 200 || body != "this is app2\n" {
		t.Errorf("callable-object %%{ENV:CALLABLE}: %d %q", code, body)
	}
	wantStatus(t, n.url+"/nocall/env", 500)
	if !s.waitLog("does not contain WSGI application 'no_such_callable'", 5*time.Second) {
		t.Errorf("no log line for the missing callable")
	}
	authz := map[string]string{"Authorization": "Basic dXNlcjpwYXNz"}
	if env := getJSON(t, n.url+"/env", "", authz); env["HTTP_AUTHORIZATION"] != nil {
		t.Errorf("HTTP_AUTHORIZATION passed by default: %q", env["HTTP_AUTHORIZATION"])
	}
	if env := getJSON(t, n.url+"/auth/env", "", authz); env["HTTP_AUTHORIZATION"] != "Basic dXNlcjpwYXNz" {
		t.Errorf("pass-authorization = true: HTTP_AUTHORIZATION = %q", env["HTTP_AUTHORIZATION"])
	}
}

// 7. [[import-script]] runs before the first request, in the process and
// interpreter that then serve it.
func TestDirectiveImportScript(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	marker := filepath.Join(apps, "marker")
	os.MkdirAll(marker, 0o777)
	os.Chmod(marker, 0o777) // the worker user writes here
	script := filepath.Join(apps, "preload.wsgi")
	conf := directivesConf(apps, "", daemonConf("pre", "")+fmt.Sprintf(`
[[import-script]]
path = %[1]q
process-group = "pre"
application-group = "%%{GLOBAL}"

[[script-alias]]
url = "/pre"
path = %[1]q
process-group = "pre"
application-group = "%%{GLOBAL}"
`, script))
	s, url := httpFrontEnd(t, dir, conf)
	var loaded []byte
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(marker, "loaded")); err == nil && bytes.HasSuffix(b, []byte("\n")) {
			loaded = b
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if loaded == nil {
		t.Fatalf("the import script did not run before any request\n%s", s.log.String())
	}
	m := getJSON(t, url+"/pre", "", nil)
	pid := fmt.Sprint(int(m["pid"].(float64)))
	if strings.TrimSpace(string(loaded)) != pid || m["loaded_pid"] != m["pid"] || m["requests"] != 1.0 {
		t.Fatalf("first request %v; import script ran in %q: want it loaded once, in the serving pid", m, loaded)
	}
	if b, _ := os.ReadFile(filepath.Join(marker, "loaded")); string(b) != string(loaded) {
		t.Fatalf("the script was executed again for the request: marker %q", b)
	}
}

// writeVersion rewrites a script that answers "vN pid" and moves its mtime
// forward, so a reload is seen even within the file system's time granularity.
func writeVersion(t *testing.T, path string, n int, mtime time.Time) {
	t.Helper()
	src := fmt.Sprintf(`import os
VERSION = %d


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("v%%d %%d" %% (VERSION, os.getpid())).encode()]
`, n)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func versionPid(t *testing.T, url string) (string, string) {
	t.Helper()
	code, body := fetch(t, "GET", url, "", nil)
	v, pid, ok := strings.Cut(body, " ")
	if code != 200 || !ok {
		t.Fatalf("GET %s = %d %q", url, code, body)
	}
	return v, pid
}

// 8. Script reloading: "module" (embedded) keeps the process, "process"
// (the daemon default) replaces it, and no request fails across the change.
func TestDirectiveScriptReloading(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	emb, dmn := filepath.Join(apps, "emb.wsgi"), filepath.Join(apps, "dmn.wsgi")
	fixed, dmod := filepath.Join(apps, "fixed.wsgi"), filepath.Join(apps, "dmod.wsgi")
	base := time.Now().Add(-time.Hour)
	for _, p := range []string{emb, dmn, fixed, dmod} {
		writeVersion(t, p, 1, base)
	}
	conf := directivesConf(apps, "", daemonConf("rel", "")+fmt.Sprintf(`
[[script-alias]]
url = "/emb"
path = %q

[[script-alias]]
url = "/dmn"
path = %q
process-group = "rel"

[[script-alias]]
url = "/fixed"
path = %q
script-reloading = false

[[script-alias]]
url = "/dmod"
path = %q
process-group = "rel"
reload-mechanism = "module"
`, emb, dmn, fixed, dmod))
	_, url := httpFrontEnd(t, dir, conf)

	// script-reloading = false keeps the loaded code; reload-mechanism
	// "module" in a daemon reloads within the process.
	fv, _ := versionPid(t, url+"/fixed")
	mv, mpid := versionPid(t, url+"/dmod")
	writeVersion(t, fixed, 2, base.Add(10*time.Second))
	writeVersion(t, dmod, 2, base.Add(10*time.Second))
	if fv2, _ := versionPid(t, url+"/fixed"); fv != "v1" || fv2 != "v1" {
		t.Errorf("script-reloading = false: %s then %s, want v1 kept", fv, fv2)
	}
	if mv2, mpid2 := versionPid(t, url+"/dmod"); mv != "v1" || mv2 != "v2" || mpid2 != mpid {
		t.Errorf("daemon with reload-mechanism module: %s pid %s then %s pid %s, want v2 in the same pid", mv, mpid, mv2, mpid2)
	}

	v, pid := versionPid(t, url+"/emb")
	if v != "v1" {
		t.Fatalf("embedded: %s before the change", v)
	}
	writeVersion(t, emb, 2, base.Add(10*time.Second))
	v2, pid2 := versionPid(t, url+"/emb")
	if v2 != "v2" || pid2 != pid {
		t.Fatalf("embedded, reload-mechanism module: after the change %s pid %s, want v2 in the same pid %s", v2, pid2, pid)
	}

	v, pid = versionPid(t, url+"/dmn")
	if v != "v1" {
		t.Fatalf("daemon: %s before the change", v)
	}
	// Requests keep flowing while the script changes.
	var stop atomic.Bool
	var failures, served atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := client.Get(url + "/dmn")
				if err != nil {
					failures.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failures.Add(1)
				}
				served.Add(1)
			}
		}()
	}
	waitServed := func(n int64) {
		for end := time.Now().Add(8 * time.Second); served.Load() < n && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitServed(5)
	writeVersion(t, dmn, 2, base.Add(10*time.Second))
	deadline := time.Now().Add(8 * time.Second)
	for v != "v2" && time.Now().Before(deadline) {
		v, pid2 = versionPid(t, url+"/dmn")
	}
	waitServed(served.Load() + 5)
	stop.Store(true)
	wg.Wait()
	if v != "v2" || pid2 == pid {
		t.Fatalf("daemon, reload-mechanism process: after the change %s pid %s, want v2 in a new process (old %s)", v, pid2, pid)
	}
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed across the script change", f, served.Load())
	}
}

// 9. restrict-stdout, restrict-stdin, restrict-signal. stdin and stdout are
// restricted only when asked (mod_wsgi >= 3.0); signal is by default.
func TestDirectiveRestrictStdioAndSignal(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	s, url := httpFrontEnd(t, dir, directivesConf(apps, "restrict-stdout = true\nrestrict-stdin = true\n", alias(apps, "/", "")))
	wantStatus(t, url+"/print", 500)
	wantStatus(t, url+"/stdin", 500)
	if code, body := fetch(t, "GET", url+"/signal", "", nil); code != 200 || body != "continued after signal.signal\n" {
		t.Errorf("restrict-signal: /signal = %d %q, want the app to continue", code, body)
	}
	for _, msg := range []string{"sys.stdout access restricted by mod_wsgi", "sys.stdin access restricted by mod_wsgi",
		"set restrict-stdout = false in [server]", "set restrict-stdin = false in [server]",
		"Callback registration for signal 12 ignored"} {
		if !s.waitLog(msg, 5*time.Second) {
			t.Errorf("no log line %q", msg)
		}
	}
	if len(s.log.lines(`"stream":"stdout"`)) != 0 {
		t.Errorf("a restricted print reached the log")
	}

	dir2 := testDir(t)
	apps2 := directivesApps(t, dir2)
	s2, url2 := httpFrontEnd(t, dir2, directivesConf(apps2, "restrict-signal = false\n", alias(apps2, "/", "")))
	if code, body := fetch(t, "GET", url2+"/print", "", nil); code != 200 || body != "printed\n" {
		t.Errorf("restrict-stdout by default: /print = %d %q", code, body)
	}
	if !s2.waitLog("printed-by-the-app", 5*time.Second) {
		t.Errorf("restrict-stdout by default: the printed line is not in the bridge log")
	}
	if code, body := fetch(t, "GET", url2+"/stdin", "", nil); code != 200 || body != "read 0\n" {
		t.Errorf("restrict-stdin by default: /stdin = %d %q", code, body)
	}
	// Unrestricted, signal.signal is Python's own, which refuses to run
	// outside the main thread: the same ValueError a request thread of
	// mod_wsgi gets with WSGIRestrictSignal Off.
	wantStatus(t, url2+"/signal", 500)
	if !s2.waitLog("signal only works in main thread", 5*time.Second) {
		t.Errorf("restrict-signal = false: no ValueError from Python's own signal.signal")
	}
	if strings.Contains(s2.log.String(), "Callback registration for signal") {
		t.Errorf("restrict-signal = false still intercepts signal.signal")
	}
}

// 10. python-path entries are site directories (.pth files work);
// python-optimize reaches sys.flags.
func TestDirectivePythonPathAndOptimize(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	server := "python-optimize = 1\n"
	conf := directivesConf(apps, server,
		fmt.Sprintf("\n[daemon.pp]\n%spython-path = [%q]\n", workerUser(), filepath.Join(apps, "pthsite"))+
			alias(apps, "/pp", `process-group = "pp"`)+alias(apps, "/", ""))
	_, url := httpFrontEnd(t, dir, conf)
	m := getJSON(t, url+"/pp/flags", "", nil)
	if m["optimize"] != 1.0 || m["pthmod"] != "pthmod from the .pth directory" || m["assert_stripped"] != true {
		t.Errorf("daemon python-path with a .pth, python-optimize = 1: %v", m)
	}
	// The embedded pool lacks the daemon's python-path.
	if code, _ := fetch(t, "GET", url+"/flags", "", nil); code != 500 {
		t.Errorf("embedded /flags = %d, want 500 (pthmod is only on the daemon's python-path)", code)
	}
	if env := getJSON(t, url+"/env", "", nil); env["wsgi.multiprocess"] != false {
		t.Errorf("embedded environ: %v", env)
	}
}

// 11. [[directory]] handler = "wsgi-script" runs the SCRIPT_FILENAME nginx
// sends, only inside the directory.
func TestDirectiveDirectoryHandler(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	www := filepath.Join(apps, "www")
	if err := os.Symlink(filepath.Join(apps, "app.wsgi"), filepath.Join(www, "escape.wsgi")); err != nil {
		t.Fatal(err)
	}
	os.Symlink(filepath.Join(www, "hello.wsgi"), filepath.Join(www, "inner.wsgi"))
	conf := directivesConf(apps, "", fmt.Sprintf("\n[[directory]]\npath = %q\nhandler = \"wsgi-script\"\n", www))
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, fmt.Sprintf(`
        root %s;
        location ~ \.wsgi(/|$) {
            include /etc/nginx/fastcgi_params;
            fastcgi_split_path_info ^(.+?\.wsgi)(/.*)$;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param PATH_INFO $fastcgi_path_info;
            fastcgi_pass wsgifcgi;
        }
`, www))
	m := getJSON(t, n.url+"/hello.wsgi/extra/path", "", nil)
	want := map[string]any{"SCRIPT_NAME": "/hello.wsgi", "PATH_INFO": "/extra/path", "SCRIPT_FILENAME": filepath.Join(www, "hello.wsgi")}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %q, want %q", k, m[k], v)
		}
	}
	if m := getJSON(t, n.url+"/inner.wsgi", "", nil); m["SCRIPT_NAME"] != "/inner.wsgi" {
		t.Errorf("a symlink that stays inside: %v", m)
	}
	wantStatus(t, n.url+"/escape.wsgi", 403)
	wantStatus(t, n.url+"/missing.wsgi", 404)
	// nginx resolves ".." itself, so say it in raw FastCGI.
	for _, c := range []struct {
		file string
		want int
	}{
		{www + "/../app.wsgi", 403},
		{www + "/sub/../hello.wsgi", 403},
		{filepath.Join(apps, "app.wsgi"), 404}, // outside every [[directory]]
		{www + "/hello.wsgi", 200},
	} {
		res := fcgiDo(t, s.sock, fcgiGet("/x.wsgi", fcgiParam{"SCRIPT_FILENAME", c.file}), nil)
		if res.status != c.want {
			t.Errorf("SCRIPT_FILENAME %s: status %d %q, want %d", c.file, res.status, res.body, c.want)
		}
	}
}

func regexpMatch(s, re string) bool { return regexp.MustCompile(re).MatchString(s) }

// runCheck runs `wsgifcgi check -c dir` and returns the exit code and output.
func runCheck(t *testing.T, files map[string]string) (int, string, string) {
	t.Helper()
	dir := testDir(t)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(binPath, "check", "-c", dir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), strings.ReplaceAll(stderr.String(), dir+"/", "")
}

// 12. wsgifcgi check: the routing table, or FILE:LINE errors and exit 1.
func TestDirectiveCheckCommand(t *testing.T) {
	code, out, errOut := runCheck(t, map[string]string{"00-server.toml": `
[server]
application-group = "%{GLOBAL}"

[embedded]
` + workerUser() + `
[daemon.site1]
processes = 2

[[script-alias]]
url = "/app"
path = "/srv/site1/app.wsgi"
process-group = "site1"
`, "10-vhost.toml": `
[vhost]
server-name = "www.example.com"

[[script-alias]]
url = "/v"
path = "/srv/v.wsgi"
application-group = "%{RESOURCE}"
`})
	if code != 0 || !strings.Contains(out, "VHOST") || !regexpMatch(out, `\*\s+/app\s+/srv/site1/app.wsgi\s+site1\s+%\{GLOBAL\}`) ||
		!regexpMatch(out, `www.example.com\s+/v\s+/srv/v.wsgi\s+%\{GLOBAL\}\s+%\{RESOURCE\}`) {
		t.Errorf("valid config: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}

	// An import script for the embedded pool with embedded mode restricted
	// is never loaded: a warning, not an error.
	code, _, errOut = runCheck(t, map[string]string{"00.toml": `[server]
restrict-embedded = true
[embedded]
` + workerUser() + `

[[import-script]]
path = "/srv/x.wsgi"
process-group = "%{GLOBAL}"
application-group = "%{GLOBAL}"
`})
	if code != 0 || !regexpMatch(errOut, `warning: 00\.toml:\d+: import-script\[0\]\.process-group: .*restrict-embedded`) {
		t.Errorf("import-script into a restricted embedded pool: exit %d, stderr %q", code, errOut)
	}

	broken := []struct {
		name  string
		files map[string]string
		want  []string // regexps, each must match stderr
	}{
		{"unknown key", map[string]string{"00.toml": "[server]\nbogus-key = 1\n"},
			[]string{`00\.toml(:\d+)?: server\.bogus-key: unknown key`}},
		{"unknown key in an alias", map[string]string{"00.toml": "[[script-alias]]\nurl = \"/\"\npath = \"/x.wsgi\"\nproces-group = \"a\"\n"},
			[]string{`00\.toml(:\d+)?: script-alias\[0\]\.proces-group: unknown key`}},
		{"bad value type", map[string]string{"00.toml": "[embedded]\nthreads = \"many\"\n"},
			[]string{`00\.toml:2: .*threads`}},
		{"bad value", map[string]string{"00.toml": "\n[server]\npython-optimize = 7\n"},
			[]string{`00\.toml:3: .*python-optimize`}},
		{"undefined process group", map[string]string{"00.toml": "[[script-alias]]\nurl = \"/\"\npath = \"/x.wsgi\"\nprocess-group = \"nope\"\n"},
			[]string{`00\.toml(:\d+)?: .*"nope" is not defined`}},
		{"expansion in an import script", map[string]string{"00.toml": "[[import-script]]\npath = \"/x.wsgi\"\nprocess-group = \"%{ENV:PG}\"\napplication-group = \"%{GLOBAL}\"\n"},
			[]string{`^[^\n]*00\.toml:3: import-script\[0\]\.process-group: "%\{ENV:PG\}": want %\{GLOBAL\} or a daemon name\n$`}},
		{"duplicate daemon across files", map[string]string{"00.toml": "[daemon.dup]\nthreads = 1\n", "10.toml": "\n\n[daemon.dup]\nthreads = 2\n"},
			[]string{`10\.toml(:\d+)?: .*dup.*duplicate daemon name.*00\.toml`}},
	}
	for _, b := range broken {
		code, out, errOut := runCheck(t, b.files)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", b.name, code, out, errOut)
			continue
		}
		for _, re := range b.want {
			if !regexpMatch(errOut, re) {
				t.Errorf("%s: stderr %q does not match %s", b.name, errOut, re)
			}
		}
	}
}

// 13. allow-encoded-slashes and chunked-request.
func TestDirectiveEncodedSlashesAndChunkedRequest(t *testing.T) {
	post := func(chunkedLen bool) []fcgiParam {
		ps := fcgiGet("/read")
		ps[0].value = "POST"
		if chunkedLen {
			ps = append(ps, fcgiParam{"CONTENT_LENGTH", "18"})
		}
		return ps
	}
	body := []byte("a body of 18 bytes")
	for _, on := range []bool{false, true} {
		dir := testDir(t)
		apps := directivesApps(t, dir)
		s := startServer(t, dir, directivesConf(apps,
			fmt.Sprintf("allow-encoded-slashes = %v\nchunked-request = %v\n", on, on), alias(apps, "/", "")))
		n := startNginx(t, dir, s.sock, nginxFastCGI)
		code, text := fetch(t, "GET", n.url+"/a%2Fb/c", "", nil)
		if !on && code != 404 {
			t.Errorf("allow-encoded-slashes off: %%2F = %d %q, want 404", code, text)
		}
		if on {
			var env map[string]any
			json.Unmarshal([]byte(text), &env)
			if code != 200 || env["PATH_INFO"] != "/a%2Fb/c" {
				t.Errorf("allow-encoded-slashes on: %d PATH_INFO %q, want /a%%2Fb/c kept encoded", code, env["PATH_INFO"])
			}
		}

		res := fcgiDo(t, s.sock, post(true), body)
		if res.status != 200 || !strings.Contains(res.body, `"length": 18`) {
			t.Errorf("chunked-request %v, with CONTENT_LENGTH: %d %q", on, res.status, res.body)
		}
		res = fcgiDo(t, s.sock, post(false), body)
		switch {
		case !on && res.status != 411:
			t.Errorf("chunked-request off, no CONTENT_LENGTH: %d %q, want 411", res.status, res.body)
		case on && (res.status != 200 || !strings.Contains(res.body, `"length": 18`) || !strings.Contains(res.body, `"content_length": null`)):
			t.Errorf("chunked-request on, no CONTENT_LENGTH: %d %q, want the body read to EOF", res.status, res.body)
		}
		// A bodiless request without CONTENT_LENGTH is fine either way.
		if res := fcgiDo(t, s.sock, fcgiGet("/env"), nil); res.status != 200 {
			t.Errorf("GET without CONTENT_LENGTH: %d", res.status)
		}
		s.stop()
	}
}

// The reference's WSGIRestrictProcess example: a server-wide
// %{ENV:PROCESS_GROUP} with a default, a user's directory (AddHandler by
// extension) restricted to the user's daemons, and .htaccess-style nested
// directories choosing among them.
func TestDirectiveRestrictProcessReferenceExample(t *testing.T) {
	dir := testDir(t)
	apps := directivesApps(t, dir)
	bob := filepath.Join(apps, "bob")
	b, _ := os.ReadFile(filepath.Join(apps, "app.wsgi"))
	for _, sub := range []string{"", "two", "sneaky"} {
		os.MkdirAll(filepath.Join(bob, sub), 0o755)
		os.WriteFile(filepath.Join(bob, sub, "app.wsgi"), b, 0o644)
	}
	conf := directivesConf(apps, "env = { PROCESS_GROUP = \"default\" }\nprocess-group = \"%{ENV:PROCESS_GROUP}\"\n",
		daemonConf(`"default"`, "processes = 2\n")+daemonConf(`"bob:1"`, "")+daemonConf(`"bob:2"`, "")+fmt.Sprintf(`
[[directory]]
path = %[1]q
extensions = [".wsgi"]
restrict-process = ["bob:1", "bob:2"]
env = { PROCESS_GROUP = "bob:1" }

[[directory]]
path = %[2]q
env = { PROCESS_GROUP = "bob:2" }

[[directory]]
path = %[3]q
env = { PROCESS_GROUP = "default" }
`, bob, filepath.Join(bob, "two"), filepath.Join(bob, "sneaky"))+alias(apps, "/main", ""))
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, fmt.Sprintf(`
        location /main/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass wsgifcgi;
        }
        location /~bob/ {
            alias %s/;
            location ~ ^/~bob/(.+?\.wsgi)(/.*)?$ {
                include /etc/nginx/fastcgi_params;
                fastcgi_param SCRIPT_FILENAME %s/$1;
                fastcgi_param PATH_INFO $2;
                fastcgi_pass wsgifcgi;
            }
        }
`, bob, bob))
	for _, c := range []struct{ path, group string }{
		{"/main/env", "default"},
		{"/~bob/app.wsgi/env", "bob:1"},
		{"/~bob/two/app.wsgi/env", "bob:2"},
	} {
		env := getJSON(t, n.url+c.path, "", nil)
		if env["mod_wsgi.process_group"] != c.group || env["PROCESS_GROUP"] != c.group {
			t.Errorf("%s: process_group %q PROCESS_GROUP %q, want %q", c.path, env["mod_wsgi.process_group"], env["PROCESS_GROUP"], c.group)
		}
		if c.path == "/~bob/app.wsgi/env" && (env["SCRIPT_NAME"] != "/~bob/app.wsgi" || env["PATH_INFO"] != "/env") {
			t.Errorf("%s: SCRIPT_NAME %q PATH_INFO %q", c.path, env["SCRIPT_NAME"], env["PATH_INFO"])
		}
	}
	// bob's restrict-process keeps his directories away from other daemons.
	wantStatus(t, n.url+"/~bob/sneaky/app.wsgi/env", 500)
}
