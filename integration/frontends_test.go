package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The front-end matrix (issue #6): the same checks through every front
// end that wsgifcgi supports, each started from Debian's package with its
// own configuration on loopback. The front-end snippets below are the ones
// docs/frontends.md shows (TestFrontendsDocsShowTheTestedConfig keeps them
// in sync): {{...}} stand for the paths, which the doc fills with
// frontendDocValues.

// frontendConf is the wsgifcgi configuration behind every front end except
// mod_fcgid: the test app at the root, and an app mounted at /mnt/app.
const frontendConf = `[server]
python-executable = "/usr/bin/python3"
socket-mode = "0666"     # or "0660" and a group the front end's user is in
chunked-request = true   # accept request bodies of unknown length (chunked uploads)

[embedded]
threads = 4
{{USER}}
[[script-alias]]
url = "/mnt/app"
path = "{{APPS}}/mounted.wsgi"

[[script-alias]]
url = "/"
path = "{{APPS}}/app.wsgi"
`

// frontendFcgidConf is the same for instances spawned by mod_fcgid: they
// run as Apache's user (no [embedded] user) and get one request at a time.
const frontendFcgidConf = `[server]
python-executable = "/usr/bin/python3"

[embedded]
threads = 1

[[script-alias]]
url = "/mnt/app"
path = "{{APPS}}/mounted.wsgi"

[[script-alias]]
url = "/"
path = "{{APPS}}/app.wsgi"
`

// frontendTestConf is added by the tests only: the bridge logs each
// FastCGI connection it accepts ("connection opened") at debug level,
// which is how the keep-alive check sees connection reuse.
const frontendTestConf = `[server]
log-level = "debug"
`

// mountedApp reports what a mounted application sees of its URL and of
// a request body, which it reads to its end (wsgi.input_terminated)
// whatever CONTENT_LENGTH says.
const mountedApp = `import hashlib
import json


def application(environ, start_response):
    h, n = hashlib.sha256(), 0
    while True:
        block = environ["wsgi.input"].read(65536)
        if not block:
            break
        h.update(block)
        n += len(block)
    keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_URI", "CONTENT_LENGTH", "wsgi.url_scheme")
    out = {k: environ.get(k) for k in keys}
    out["body_sha256"], out["body_length"] = h.hexdigest(), n
    body = json.dumps(out).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
`

// nginx (nginx-light). {{UPSTREAM}} is "unix:{{SOCK}}" or "{{ADDR}}".
const (
	nginxFrontendUpstream = `upstream wsgifcgi {
    server {{UPSTREAM}};
    keepalive 8;
}
`
	nginxFrontendLocation = `location / {
    include /etc/nginx/fastcgi_params;
    fastcgi_param HTTP_HOST $http_host;
    fastcgi_param REMOTE_USER "";
    fastcgi_pass wsgifcgi;
    fastcgi_keep_conn on;
    client_max_body_size 100m;
}
`
)

// Apache + mod_fcgid: mod_fcgid spawns wsgifcgi through the wrapper
// (apacheWrapper of apache_test.go, with {{DIR}} the directory that holds
// conf.d), handing it the listening socket on fd 0.
const apacheFrontendFcgid = `FcgidMaxRequestLen 104857600
FcgidMaxProcessesPerClass 4
FcgidOutputBufferSize 0
<Location />
    SetHandler fcgid-script
    FcgidWrapper {{WRAPPER}} virtual
    Options +ExecCGI
</Location>
`

// Apache + mod_proxy_fcgi, over tcp (ProxyPass) and over a unix socket
// (SetHandler).
const (
	apacheFrontendProxyPass = `ProxyPass "/" "fcgi://{{ADDR}}/" enablereuse=on ttl=60 flushpackets=auto
`
	apacheFrontendSetHandler = `<Proxy "unix:{{SOCK}}|fcgi://localhost">
    ProxySet enablereuse=on ttl=60 flushpackets=auto
</Proxy>
<Location />
    SetHandler "proxy:unix:{{SOCK}}|fcgi://localhost"
</Location>
`
)

// lighttpd mod_fastcgi. The request body is buffered (the default
// server.stream-request-body = 0): streaming it (1 or 2) makes lighttpd
// refuse chunked uploads with its own 411.
const lighttpdFrontend = `server.modules += ( "mod_fastcgi" )
server.stream-response-body = 2
fastcgi.server = ( "/" => ((
    "socket"      => "{{SOCK}}",
    "check-local" => "disable",
)))
`

// Caddy: the directives of the site block.
const caddyFrontend = `	reverse_proxy unix/{{SOCK}} {
		transport fastcgi
		flush_interval -1
	}
`

// frontendDocValues are what docs/frontends.md shows for the placeholders.
var frontendDocValues = []string{
	"{{SOCK}}", "/run/wsgifcgi/fcgi.sock",
	"{{ADDR}}", "127.0.0.1:9000",
	"{{APPS}}", "/srv/www",
	"{{DIR}}", "/srv/www",
	"{{USER}}", "user = \"www-data\"\ngroup = \"www-data\"\n",
	"{{BIN}}", "/usr/local/bin/wsgifcgi",
	"{{WRAPPER}}", "/srv/www/wsgifcgi-fcgid",
}

// frontend is one front end of the matrix, started for one subtest.
type frontend struct {
	url string
	// log is wsgifcgi's log so far (of every instance, for mod_fcgid).
	log func() string
	// reuse: the front end sends further requests over a FastCGI
	// connection it used before (FCGI_KEEP_CONN), and the test checks it.
	reuse bool
	// extra checks of this front end.
	extra []frontendCheck
}

// frontendCheck is one check of the matrix.
type frontendCheck struct {
	name string
	run  func(t *testing.T, fe *frontend)
}

// frontendChecks run through every front end.
var frontendChecks = []frontendCheck{
	{"hello", checkHello},
	{"post-echo", checkPostEcho},
	{"post-lent", checkPostLent},
	{"download-50MiB", checkDownload},
	{"mounted-app", checkMounted},
	{"chunked-upload", checkChunkedUpload},
	{"keep-alive", checkKeepAlive},
	{"streaming", checkStreaming},
}

// frontendCases is the matrix.
var frontendCases = []struct {
	name  string
	start func(t *testing.T, dir, apps string) *frontend
}{
	{"nginx-unix", func(t *testing.T, dir, apps string) *frontend {
		s := startServer(t, dir, frontendConfig(t, dir, apps))
		upstream := fillFrontend(nginxFrontendUpstream, "{{UPSTREAM}}", "unix:"+s.sock)
		n := startNginxWith(t, dir, upstream, nginxFrontendLocation)
		return &frontend{url: n.url, log: s.log.String, reuse: true}
	}},
	{"nginx-tcp", func(t *testing.T, dir, apps string) *frontend {
		s, addr := startServerTCP(t, dir, apps)
		n := startNginxWith(t, dir, fillFrontend(nginxFrontendUpstream, "{{UPSTREAM}}", addr), nginxFrontendLocation)
		return &frontend{url: n.url, log: s.log.String, reuse: true}
	}},
	{"apache-fcgid", func(t *testing.T, dir, apps string) *frontend {
		return startApacheFcgid(t, dir, apps)
	}},
	{"apache-proxy-fcgi-tcp", func(t *testing.T, dir, apps string) *frontend {
		s, addr := startServerTCP(t, dir, apps)
		a := startApacheIn(t, dir, fillFrontend(apacheFrontendProxyPass, "{{ADDR}}", addr), "proxy", "proxy_fcgi")
		return &frontend{url: a.url, log: s.log.String, reuse: true}
	}},
	{"apache-proxy-fcgi-unix", func(t *testing.T, dir, apps string) *frontend {
		s := startServer(t, dir, frontendConfig(t, dir, apps))
		a := startApacheIn(t, dir, fillFrontend(apacheFrontendSetHandler, "{{SOCK}}", s.sock), "proxy", "proxy_fcgi")
		return &frontend{url: a.url, log: s.log.String, reuse: true}
	}},
	{"lighttpd", func(t *testing.T, dir, apps string) *frontend {
		s := startServer(t, dir, frontendConfig(t, dir, apps))
		l := startLighttpd(t, dir, fillFrontend(lighttpdFrontend, "{{SOCK}}", s.sock))
		return &frontend{url: l.url, log: s.log.String}
	}},
	{"caddy", func(t *testing.T, dir, apps string) *frontend {
		s := startServer(t, dir, frontendConfig(t, dir, apps))
		c := startCaddy(t, dir, fillFrontend(caddyFrontend, "{{SOCK}}", s.sock))
		return &frontend{url: c.url, log: s.log.String}
	}},
}

func TestFrontends(t *testing.T) {
	for _, fc := range frontendCases {
		t.Run(fc.name, func(t *testing.T) {
			dir := testDir(t)
			apps := appsDir(t, dir)
			if err := os.WriteFile(filepath.Join(apps, "mounted.wsgi"), []byte(mountedApp), 0o644); err != nil {
				t.Fatal(err)
			}
			fe := fc.start(t, dir, apps)
			for _, c := range slices.Concat(frontendChecks, fe.extra) {
				t.Run(c.name, func(t *testing.T) { c.run(t, fe) })
			}
		})
	}
}

// fillFrontend replaces placeholders: pairs of old, new.
func fillFrontend(s string, oldnew ...string) string {
	return strings.NewReplacer(oldnew...).Replace(s)
}

// frontendConfig returns frontendConf for the apps in apps, and writes the
// test-only settings beside it (startServer writes the returned text to
// conf.d/00-test.toml).
func frontendConfig(t *testing.T, dir, apps string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "conf.d", "99-test.toml"), []byte(frontendTestConf), 0o644); err != nil {
		t.Fatal(err)
	}
	return fillFrontend(frontendConf, "{{APPS}}", apps, "{{USER}}", workerUser())
}

// startServerTCP starts wsgifcgi with a tcp listener as well, and returns
// its address.
func startServerTCP(t *testing.T, dir, apps string) (*server, string) {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	s := startServer(t, dir, frontendConfig(t, dir, apps), "--listen", "tcp:"+addr)
	waitTCP(t, addr, s.done, s.log)
	return s, addr
}

// startApacheIn runs Apache in dir/apache (its own ServerRoot, so that
// its leftover-process check never takes the wsgifcgi of dir for one of
// its own) with body and the modules.
func startApacheIn(t *testing.T, dir, body string, modules ...string) *apache {
	t.Helper()
	root := filepath.Join(dir, "apache")
	docroot := filepath.Join(root, "htdocs")
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	return startApache(t, root, docroot, body, append([]string{"authz_core"}, modules...)...)
}

// startApacheFcgid writes the wrapper and the configuration of the
// instances mod_fcgid spawns, and starts Apache with mod_fcgid.
func startApacheFcgid(t *testing.T, dir, apps string) *frontend {
	t.Helper()
	conf := filepath.Join(dir, "conf.d")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"00-site.toml": fillFrontend(frontendFcgidConf, "{{APPS}}", apps),
		"99-test.toml": frontendTestConf,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(conf, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	wrapper := filepath.Join(dir, "wsgifcgi-fcgid")
	if err := os.WriteFile(wrapper, []byte(fillFrontend(apacheWrapper, "{{BIN}}", binPath, "{{DIR}}", dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	// What the instances will run, checked here as the user they run as,
	// so that a bad configuration fails with its message.
	if code, out, errOut := runCheckDir(t, conf); code != 0 {
		t.Fatalf("wsgifcgi check: exit %d\n%s%s", code, out, errOut)
	}
	// Apache's ServerRoot is dir, so that its cleanup finds (and fails the
	// test for) any instance or worker that outlives it.
	docroot := filepath.Join(dir, "htdocs")
	if err := os.MkdirAll(docroot, 0o755); err != nil {
		t.Fatal(err)
	}
	a := startApache(t, dir, docroot, fillFrontend(apacheFrontendFcgid, "{{WRAPPER}}", wrapper), "authz_core", "fcgid")
	return &frontend{url: a.url, log: func() string { return a.read(a.errorLog) },
		extra: []frontendCheck{{"instances", checkFcgidInstances}}}
}

func checkHello(t *testing.T, fe *frontend) {
	code, body := get(t, fe.url+"/hello")
	if code != 200 || body != "Hello from wsgifcgi\n" {
		t.Fatalf("GET /hello = %d %q", code, body)
	}
}

// checkPostEcho posts 4 MiB and compares what comes back by sha256.
func checkPostEcho(t *testing.T, fe *frontend) {
	data := make([]byte, 4<<20)
	rand.Read(data)
	resp, err := client.Post(fe.url+"/echo", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("reading the echo: %v after %d bytes", err, n)
	}
	want := sha256.Sum256(data)
	if resp.StatusCode != 200 || n != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("POST /echo of %d bytes: status %d, %d bytes back, sha256 %x, want %x", len(data), resp.StatusCode, n, h.Sum(nil), want)
	}
}

// checkPostLent posts 4 MiB to an application that reads it all before it
// answers: beyond body-buffer-size, the worker reads it from the front
// end's connection itself (lending), whose records it must parse.
func checkPostLent(t *testing.T, fe *frontend) {
	before := strings.Count(fe.log(), lentLine)
	data := make([]byte, 4<<20)
	rand.Read(data)
	postSHA(t, fe.url+"/sha", data)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(fe.log(), lentLine) == before {
		if time.Now().After(deadline) {
			t.Fatalf("the body was not read from a lent connection:\n%s", fe.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// genSHA256 is the sha256 of what /gen?n=size yields: bytes 0..255
// repeated, in 64 KiB chunks.
func genSHA256(size int) []byte {
	block := make([]byte, 65536)
	for i := range block {
		block[i] = byte(i)
	}
	h := sha256.New()
	for left := size; left > 0; left -= len(block) {
		h.Write(block[:min(len(block), left)])
	}
	return h.Sum(nil)
}

// checkDownload fetches 50 MiB that the application yields in 64 KiB
// chunks, and compares them by sha256.
func checkDownload(t *testing.T, fe *frontend) {
	const size = 50 << 20
	resp, err := client.Get(fmt.Sprintf("%s/gen?n=%d", fe.url, size))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("reading the download: %v after %d bytes", err, n)
	}
	if want := genSHA256(size); resp.StatusCode != 200 || n != size || !bytes.Equal(h.Sum(nil), want) {
		t.Fatalf("GET /gen of %d bytes: status %d, %d bytes, sha256 %x, want %x", size, resp.StatusCode, n, h.Sum(nil), want)
	}
}

// checkMounted: an application mounted at /mnt/app gets SCRIPT_NAME and
// PATH_INFO from wsgifcgi's routing (as mod_wsgi sets them), whatever
// the front end sent for them.
func checkMounted(t *testing.T, fe *frontend) {
	for _, c := range []struct {
		uri                  string
		scriptName, pathInfo string
		queryString          string
	}{
		{"/mnt/app/x/y", "/mnt/app", "/x/y", ""},
		{"/mnt/app/a%20b/?q=1&r=%2F", "/mnt/app", "/a b/", "q=1&r=%2F"},
		{"/mnt/app", "/mnt/app", "", ""},
	} {
		code, body := get(t, fe.url+c.uri)
		if code != 200 {
			t.Errorf("GET %s = %d %q", c.uri, code, body)
			continue
		}
		var env map[string]any
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			t.Errorf("GET %s: %v: %q", c.uri, err, body)
			continue
		}
		want := map[string]any{"SCRIPT_NAME": c.scriptName, "PATH_INFO": c.pathInfo, "QUERY_STRING": c.queryString,
			"REQUEST_URI": c.uri, "wsgi.url_scheme": "http"}
		for k, v := range want {
			if env[k] != v {
				t.Errorf("GET %s: %s = %#v, want %#v", c.uri, k, env[k], v)
			}
		}
	}
}

// checkChunkedUpload posts 1 MiB without Content-Length (HTTP/1.1
// chunked): the front end either buffers it and sends CONTENT_LENGTH, or
// streams it without (chunked-request = true reads it to its end).
func checkChunkedUpload(t *testing.T, fe *frontend) {
	data := make([]byte, 1<<20)
	rand.Read(data)
	req, _ := http.NewRequest("POST", fe.url+"/mnt/app/upload", io.MultiReader(bytes.NewReader(data)))
	req.ContentLength = -1 // unknown: Transfer-Encoding: chunked
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("chunked POST: %d %.200q", resp.StatusCode, b)
	}
	var got struct {
		CL     *string `json:"CONTENT_LENGTH"`
		SHA    string  `json:"body_sha256"`
		Length int     `json:"body_length"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v: %q", err, b)
	}
	want := sha256.Sum256(data)
	if got.Length != len(data) || got.SHA != hex.EncodeToString(want[:]) {
		t.Fatalf("chunked POST of %d bytes: the application read %d bytes, sha256 %s, want %x", len(data), got.Length, got.SHA, want)
	}
	cl := "none"
	if got.CL != nil {
		cl = *got.CL
		if cl != strconv.Itoa(len(data)) {
			t.Errorf("CONTENT_LENGTH %q for a body of %d bytes", cl, len(data))
		}
	}
	t.Logf("CONTENT_LENGTH the application saw: %s", cl)
}

// checkKeepAlive sends requests one after the other over one HTTP
// connection. All of them must be answered on it. Where the front end
// reuses FastCGI connections, the bridge must see (almost) no new one:
// it logs each connection it accepts.
func checkKeepAlive(t *testing.T, fe *frontend) {
	const n = 10
	tr := &http.Transport{Proxy: nil, MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	tag := "ka" + strconv.FormatInt(time.Now().UnixNano(), 36)
	send := func(i int) {
		t.Helper()
		var reused bool
		trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { reused = ci.Reused }}
		uri := fmt.Sprintf("/hello?%s=%d", tag, i)
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", fe.url+uri, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != "Hello from wsgifcgi\n" {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, b, err)
		}
		if i > 0 && !reused {
			t.Errorf("request %d went over a new HTTP connection: the front end closed the previous one", i)
		}
		// The access line follows the request's "connection opened" in the
		// same stream: once it is there, so is that.
		if !waitFor(func() bool { return strings.Contains(fe.log(), `"uri":"`+uri+`"`) }, 15*time.Second) {
			t.Fatalf("no access log line for %s", uri)
		}
	}
	opened := func() int { return strings.Count(fe.log(), `"message":"connection opened"`) }
	send(0)
	before := opened()
	for i := 1; i <= n; i++ {
		send(i)
	}
	fresh := opened() - before
	if fe.reuse {
		if fresh > 1 {
			t.Errorf("%d requests after a first one opened %d new FastCGI connections; the front end should have reused its connection", n, fresh)
		}
	} else {
		t.Logf("%d requests opened %d FastCGI connections (this front end does not reuse them)", n, fresh)
	}
}

// checkStreaming: the application yields "first\n", sleeps a second and
// yields "second\n". Every front end is configured to pass the first block
// on before the second exists: a second (less a margin) must pass between
// the two, however late the first comes on a loaded machine.
func checkStreaming(t *testing.T, fe *frontend) {
	s := getStream(t, fe.url+"/stream/gen")
	first, total := s.first, s.total
	if s.code != 200 || s.head != "first\n" || s.rest != "second\n" {
		t.Fatalf("GET /stream/gen = %d %q %q", s.code, s.head, s.rest)
	}
	t.Logf("first block after %v, second after %v", first, total)
	if total-first < 500*time.Millisecond {
		t.Errorf("first block after %v, second after %v: the response was buffered", first, total)
	}
}

// checkFcgidInstances: concurrent requests make mod_fcgid spawn several
// wsgifcgi instances. Each has its own inherited socket and its own
// workers, and none of them fails.
func checkFcgidInstances(t *testing.T, fe *frontend) {
	const n = 6
	var wg sync.WaitGroup
	pids := make([]int, n)
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := client.Get(fe.url + "/slow")
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("GET /slow: %d %q", resp.StatusCode, b)
				return
			}
			pids[i], _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The worker that answered each request, and the wsgifcgi instance
	// whose worker it is.
	instances := map[int]bool{}
	for _, pid := range pids {
		if pid == 0 {
			continue
		}
		ppid, ok := ppidOf(pid)
		if !ok || !strings.Contains(cmdline(ppid), binPath+" serve -c ") {
			t.Errorf("worker %d: parent %d (%q) is not a wsgifcgi instance", pid, ppid, cmdline(ppid))
			continue
		}
		instances[ppid] = true
	}
	log := fe.log()
	sockets := map[string]bool{}
	for _, line := range strings.Split(log, "\n") {
		_, sock, ok := strings.Cut(line, `"listen":"`)
		if ok && strings.Contains(line, `"message":"serving FastCGI"`) {
			sock, _, _ = strings.Cut(sock, `"`)
			sockets[sock] = true
		}
	}
	started := strings.Count(log, `"message":"serving FastCGI"`)
	t.Logf("%d requests served by the workers of %d instances; %d instances started, on %d sockets", n, len(instances), started, len(sockets))
	if len(instances) < 2 {
		t.Errorf("%d concurrent requests were served by %d wsgifcgi instance(s); mod_fcgid should have spawned more", n, len(instances))
	}
	if len(sockets) != started {
		t.Errorf("%d instances started on %d distinct sockets", started, len(sockets))
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"fatal"`) {
			t.Errorf("an instance logged an error: %s", line)
		}
	}
	// Apache's cleanup fails the test if an instance or a worker outlives it.
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(cond func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// docs/frontends.md shows exactly the configuration the matrix runs, and
// the README's quick start the nginx and mod_fcgid parts of it.
func TestFrontendsDocsShowTheTestedConfig(t *testing.T) {
	fill := func(s string) string {
		return fillFrontend(fillFrontend(s, "{{UPSTREAM}}", "unix:{{SOCK}}"), frontendDocValues...)
	}
	blocks := map[string]string{
		"nginx upstream":    "```nginx\n" + fill(nginxFrontendUpstream) + "```",
		"nginx locations":   "```nginx\n" + fill(nginxFrontendLocation) + "```",
		"mod_fcgid wrapper": "```sh\n" + fill(apacheWrapper) + "```",
		"mod_fcgid Apache":  "```apache\n" + fill(apacheFrontendFcgid) + "```",
	}
	readme := maps.Clone(blocks)
	maps.Copy(blocks, map[string]string{
		"wsgifcgi TOML":       "```toml\n" + fill(frontendConf) + "```",
		"mod_fcgid TOML":      "```toml\n" + fill(frontendFcgidConf) + "```",
		"mod_proxy_fcgi tcp":  "```apache\n" + fill(apacheFrontendProxyPass) + "```",
		"mod_proxy_fcgi unix": "```apache\n" + fill(apacheFrontendSetHandler) + "```",
		"lighttpd":            "```\n" + fill(lighttpdFrontend) + "```",
		"Caddy":               "```caddy\nexample.com {\n" + fill(caddyFrontend) + "}\n```",
	})
	for file, want := range map[string]map[string]string{"../docs/frontends.md": blocks, "../README.md": readme} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for name, block := range want {
			if !strings.Contains(string(b), block) {
				t.Errorf("%s lacks the tested %s block:\n%s", file, name, block)
			}
		}
	}
}
