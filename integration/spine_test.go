package integration

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// spineConf serves the test app at the root from the embedded pool.
func spineConf(apps string, processes, threads int) string {
	return fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"
log-level = "debug"

[embedded]
processes = %d
threads = %d
%s
[[script-alias]]
url = "/"
path = %q
`, python, processes, threads, workerUser(), filepath.Join(apps, "app.wsgi"))
}

// spine starts wsgifcgi and nginx for one test.
func spine(t *testing.T, processes, threads int) (*server, *nginx, string) {
	t.Helper()
	dir := testDir(t)
	apps := appsDir(t, dir)
	s := startServer(t, dir, spineConf(apps, processes, threads))
	n := startNginx(t, dir, s.sock, nginxFastCGI)
	return s, n, dir
}

func TestGetAndPostThroughNginx(t *testing.T) {
	s, n, _ := spine(t, 1, 4)
	code, body := get(t, n.url+"/hello")
	if code != 200 || body != "Hello from wsgifcgi\n" {
		t.Fatalf("GET /hello = %d %q", code, body)
	}
	resp, err := client.Post(n.url+"/echo", "text/plain", strings.NewReader("posted body"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "posted body" {
		t.Fatalf("POST /echo = %d %q", resp.StatusCode, b)
	}
	// The environ as the app sees it: PEP 3333 keys and the routing.
	code, body = get(t, n.url+"/env?a=1")
	if code != 200 {
		t.Fatalf("GET /env = %d %s", code, body)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"SCRIPT_NAME": "", "PATH_INFO": "/env", "QUERY_STRING": "a=1", "REQUEST_METHOD": "GET",
		"wsgi.url_scheme": "http", "wsgi.multithread": true, "wsgi.multiprocess": false,
		"wsgi.run_once": false, "wsgi.input_terminated": true, "mod_wsgi.process_group": "",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("environ[%q] = %#v, want %#v", k, env[k], v)
		}
	}
	if !s.waitLog(`"uri":"/env?a=1"`, 5*time.Second) {
		t.Errorf("no access log line for /env")
	}
}

func TestUploadTenMiB(t *testing.T) {
	_, n, _ := spine(t, 1, 2)
	data := make([]byte, 10<<20)
	rand.Read(data)
	resp, err := client.Post(n.url+"/echo", "application/octet-stream", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data)
	if resp.StatusCode != 200 || got != int64(len(data)) || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo of 10 MiB: status %d, %d bytes, sha256 match %v", resp.StatusCode, got, bytes.Equal(h.Sum(nil), want[:]))
	}
}

func TestDownloadHundredMiBBoundedMemory(t *testing.T) {
	s, n, _ := spine(t, 1, 2)
	const size = 100 << 20
	resp, err := client.Get(fmt.Sprintf("%s/gen?n=%d", n.url, size))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 65536)
	for i := range block {
		block[i] = byte(i)
	}
	wh := sha256.New()
	for left := size; left > 0; left -= len(block) {
		wh.Write(block[:min(len(block), left)])
	}
	if resp.StatusCode != 200 || got != size || hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(wh.Sum(nil)) {
		t.Fatalf("100 MiB download: status %d, %d bytes, sha256 %x want %x", resp.StatusCode, got, h.Sum(nil), wh.Sum(nil))
	}
	if rss := s.peakRSS(); rss > 64<<10 {
		t.Fatalf("bridge peak RSS %d KiB, want < 64 MiB", rss)
	}
}

func TestStreamFirstByteBeforeSleepEnds(t *testing.T) {
	_, n, _ := spine(t, 1, 2)
	s := getStream(t, n.url+"/stream/gen")
	if s.head != "first\n" || s.rest != "second\n" {
		t.Fatalf("stream body %q %q", s.head, s.rest)
	}
	if s.first > 700*time.Millisecond {
		t.Fatalf("first block arrived after %v: the response was buffered", s.first)
	}
	if s.total < time.Second {
		t.Fatalf("whole response in %v: the app's sleep did not happen", s.total)
	}
}

func TestConcurrentSlowRequestsSpread(t *testing.T) {
	_, n, _ := spine(t, 2, 10)
	// Warm both processes so the timing measures serving, not start-up.
	get(t, n.url+"/hello")
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	pids := map[string]int{}
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(n.url + "/slow")
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				errs <- fmt.Errorf("status %d: %s", resp.StatusCode, b)
				return
			}
			mu.Lock()
			pids[strings.TrimSpace(string(b))]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	elapsed := time.Since(start)
	if elapsed > 3500*time.Millisecond {
		t.Errorf("20 one-second requests over 2x10 threads took %v; they did not run concurrently", elapsed)
	}
	if len(pids) != 2 {
		t.Errorf("requests served by %d processes (%v), want 2", len(pids), pids)
	}
}

func TestKeepAliveConnectionReused(t *testing.T) {
	s, n, _ := spine(t, 1, 4)
	for i := 0; i < 50; i++ {
		if code, _ := get(t, n.url+"/hello"); code != 200 {
			t.Fatalf("request %d: status %d", i, code)
		}
	}
	// nginx's upstream keepalive with fastcgi_keep_conn on sends every
	// sequential request over one FastCGI connection. (The log is written
	// in batches, up to 50 ms late.)
	s.waitLog(`"connection opened"`, 2*time.Second)
	if conns := len(s.log.lines(`"connection opened"`)); conns < 1 || conns > 2 {
		t.Fatalf("50 sequential requests used %d FastCGI connections, want 1 (keep-alive)", conns)
	}
}

func TestClientAbortCallsClose(t *testing.T) {
	_, n, dir := spine(t, 1, 2)
	marker := filepath.Join(dir, "closed")
	os.Chmod(dir, 0o777) // the worker (maybe nobody) writes the marker here
	resp, err := client.Get(n.url + "/stream/endless?marker=" + marker)
	if err != nil {
		t.Fatal(err)
	}
	io.CopyN(io.Discard, resp.Body, 1<<20)
	resp.Body.Close() // the client goes away mid-stream
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(marker); err == nil && string(b) == "closed\n" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the iterable's close() was not called after the client aborted")
}

func TestAppExceptionIs500WithTraceback(t *testing.T) {
	s, n, _ := spine(t, 1, 2)
	code, _ := get(t, n.url+"/boom")
	if code != 500 {
		t.Fatalf("GET /boom = %d, want 500", code)
	}
	if !s.waitLog("RuntimeError: boom: the test app raised on purpose", 5*time.Second) || !s.waitLog("Traceback", time.Second) {
		t.Fatalf("traceback not logged")
	}
	// The worker survives an application error.
	if code, _ := get(t, n.url+"/hello"); code != 200 {
		t.Fatalf("after the exception GET /hello = %d", code)
	}
}

func TestMissingScriptIs404(t *testing.T) {
	dir := testDir(t)
	apps := appsDir(t, dir)
	// Aliases are tried in file order and "/" matches everything, so /missing comes first.
	conf := fmt.Sprintf("[[script-alias]]\nurl = \"/missing\"\npath = %q\n", filepath.Join(apps, "nope.wsgi")) +
		spineConf(apps, 1, 2)
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, nginxFastCGI)
	if code, _ := get(t, n.url+"/missing/x"); code != 404 {
		t.Fatalf("missing script: status %d, want 404", code)
	}
	if code, _ := get(t, n.url+"/hello"); code != 200 {
		t.Fatalf("GET /hello = %d", code)
	}
}

func TestHTTPFrontEnd(t *testing.T) {
	dir := testDir(t)
	apps := appsDir(t, dir)
	port := freePort(t)
	s := startServer(t, dir, spineConf(apps, 1, 2), "--http", fmt.Sprintf("127.0.0.1:%d", port))
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), s.done, s.log)
	code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/hello", port))
	if code != 200 || body != "Hello from wsgifcgi\n" {
		t.Fatalf("--http GET /hello = %d %q", code, body)
	}
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/echo", port), strings.NewReader("abc"))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "abc" {
		t.Fatalf("--http POST /echo = %q", b)
	}
}

func TestSIGTERMFinishesInFlightRequest(t *testing.T) {
	s, n, _ := spine(t, 1, 2)
	get(t, n.url+"/hello")
	type result struct {
		code int
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := client.Get(n.url + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{code: resp.StatusCode, body: string(b)}
	}()
	time.Sleep(300 * time.Millisecond) // the request is in the worker now
	s.cmd.Process.Signal(syscall.SIGTERM)
	r := <-done
	if r.err != nil || r.code != 200 {
		t.Fatalf("in-flight request during SIGTERM: %v, status %d %q", r.err, r.code, r.body)
	}
	if code := s.exitCode(15 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
}
