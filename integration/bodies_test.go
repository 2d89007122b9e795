package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Slow, stalled and truncated request bodies (issue 14), straight to the
// socket and through nginx with request buffering off, as the docs
// recommend for streaming uploads.

// nginxUnbuffered passes request bodies on as they arrive.
const nginxUnbuffered = `
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_NAME "";
            fastcgi_pass wsgifcgi;
            fastcgi_keep_conn on;
            fastcgi_request_buffering off;
        }
`

// fcgiPost is the params of a POST of uri with that CONTENT_LENGTH.
func fcgiPost(uri string, length int) []fcgiParam {
	return fcgiGet(uri, fcgiParam{"REQUEST_METHOD", "POST"}, fcgiParam{"CONTENT_LENGTH", strconv.Itoa(length)})
}

// fcgiSend opens a connection and sends request 1 (closed after): its
// params and stdin, and the empty STDIN record only when end.
func fcgiSend(t *testing.T, sock string, ps []fcgiParam, stdin []byte, end bool) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(fcgiRequest(ps, stdin, end)); err != nil {
		t.Fatal(err)
	}
	return c
}

// fcgiAnswer is a response read by fcgiRead.
type fcgiAnswer struct {
	status   int // from the CGI Status header (200 without one)
	body     string
	protocol byte // END_REQUEST's protocol status
}

// fcgiRead reads the response to request 1 on c, within timeout.
func fcgiRead(c net.Conn, timeout time.Duration) (fcgiAnswer, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	r := bufio.NewReader(c)
	var stdout bytes.Buffer
	for {
		var h [8]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return fcgiAnswer{}, fmt.Errorf("reading a record header: %w (stdout so far %q)", err, stdout.String())
		}
		n, pad := int(h[4])<<8|int(h[5]), int(h[6])
		content := make([]byte, n+pad)
		if _, err := io.ReadFull(r, content); err != nil {
			return fcgiAnswer{}, err
		}
		switch h[1] {
		case 6:
			stdout.Write(content[:n])
		case 3:
			a := fcgiAnswer{status: 200, protocol: content[4]}
			head, body, _ := strings.Cut(stdout.String(), "\r\n\r\n")
			a.body = body
			for _, line := range strings.Split(head, "\r\n") {
				if v, ok := strings.CutPrefix(line, "Status: "); ok {
					a.status, _ = strconv.Atoi(strings.Fields(v)[0])
				}
			}
			return a, nil
		}
	}
}

// httpStall sends a POST to nginx with a Content-Length of length and only
// sent bytes of body, and returns the connection.
func httpStall(t *testing.T, n *nginx, uri string, length int, sent []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(n.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", uri, length)
	c.Write(sent)
	return c
}

// httpStatus reads the status of the HTTP response on c, within timeout.
func httpStatus(c net.Conn, timeout time.Duration) (int, error) {
	c.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// timedGets GETs url count times in a row and returns each one's time;
// every answer must be a 200.
func timedGets(t *testing.T, url string, count int) []time.Duration {
	t.Helper()
	ds := make([]time.Duration, 0, count)
	for i := 0; i < count; i++ {
		start := time.Now()
		code, body := get(t, url)
		ds = append(ds, time.Since(start))
		if code != 200 {
			t.Fatalf("GET %s: %d %q", url, code, body)
		}
	}
	return ds
}

// p99 is the 99th percentile of ds (which it sorts).
func p99(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[(len(ds)*99+99)/100-1]
}

// waitLines waits (up to 5 s) until want log lines hold every one of
// substrs (a log line may follow its response) and returns their count.
func waitLines(s *server, want int, substrs ...string) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := countLines(s, substrs...)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countLines counts the log lines that hold every one of substrs.
func countLines(s *server, substrs ...string) int {
	n := 0
	for _, line := range s.log.lines(substrs[0]) {
		all := true
		for _, sub := range substrs[1:] {
			all = all && strings.Contains(line, sub)
		}
		if all {
			n++
		}
	}
	return n
}

// Four times as many stalled bodies as the pool has threads, straight to
// the socket and through nginx, hold no thread: normal requests keep
// their latency, and the stalled ones end with 408 at socket-timeout
// without ever reaching the application.
func TestStalledBodiesHoldNoThread(t *testing.T) {
	const threads = 4
	s, n, _ := daemonSetupWith(t, "processes = 2\nthreads = 2\nsocket-timeout = 4\n", nginxUnbuffered)
	pidOf(t, n)
	timedGets(t, n.url+"/pid", 20) // warm both workers and nginx's keep-alive
	unloaded := p99(timedGets(t, n.url+"/pid", 100))

	stalled := time.Now()
	var raw, viaNginx []net.Conn
	for i := 0; i < 4*threads; i++ {
		raw = append(raw, fcgiSend(t, s.sock, fcgiPost("/readbody", 5000), bytes.Repeat([]byte("r"), 1000), false))
		viaNginx = append(viaNginx, httpStall(t, n, "/readbody", 5000, bytes.Repeat([]byte("n"), 1000)))
	}
	time.Sleep(300 * time.Millisecond) // every stalled request has reached the bridge

	loadedTimes := timedGets(t, n.url+"/pid", 100)
	for i := 0; i < 10; i++ {
		start := time.Now()
		if r := fcgiDo(t, s.sock, fcgiGet("/pid"), nil); r.status != 200 || time.Since(start) > time.Second {
			t.Fatalf("straight to the socket with bodies stalled: %d after %v", r.status, time.Since(start))
		}
	}
	held := time.Since(stalled)
	for i, d := range loadedTimes {
		if d > time.Second {
			t.Errorf("request %d took %v with bodies stalled", i, d)
		}
	}
	loaded := p99(loadedTimes)
	t.Logf("p99 unloaded %v, with %d stalled bodies %v (measured within %v of the stall)", unloaded, 8*threads, loaded, held)
	if loaded > 2*unloaded+50*time.Millisecond {
		t.Errorf("p99 with stalled bodies %v, unloaded %v: want within 2x", loaded, unloaded)
	}
	if held > 4*time.Second {
		t.Fatalf("the measurement took %v: past socket-timeout, it proves nothing", held)
	}

	for i, c := range raw {
		a, err := fcgiRead(c, 8*time.Second)
		if err != nil || a.status != 408 {
			t.Fatalf("stalled request %d straight to the socket: %+v %v, want a 408", i, a, err)
		}
	}
	if d := time.Since(stalled); d < 3500*time.Millisecond || d > 7*time.Second {
		t.Errorf("stalled bodies ended after %v, want about socket-timeout (4 s)", d)
	}
	for i, c := range viaNginx {
		if code, err := httpStatus(c, 8*time.Second); err != nil || code != 408 {
			t.Errorf("stalled request %d through nginx: %d %v, want a 408", i, code, err)
		}
	}
	if got := waitLines(s, 8*threads, `"status":408`, "request body sent nothing in time"); got != 8*threads {
		t.Errorf("%d access-log lines with 408, want %d", got, 8*threads)
	}
	if strings.Contains(s.log.String(), "readbody:") {
		t.Errorf("a stalled body within body-buffer-size reached the application:\n%s", s.log.lines("readbody:"))
	}
}

// A body larger than body-buffer-size goes to the application as it
// arrives; when it stalls past socket-timeout, the application's read
// raises OSError and the request ends with 408.
func TestStalledBodyFailsTheApplicationsRead(t *testing.T) {
	s, n, _ := daemonSetupWith(t, "threads = 2\nsocket-timeout = 2\nbody-buffer-size = 4096\n", nginxUnbuffered)
	pidOf(t, n)
	start := time.Now()
	raw := fcgiSend(t, s.sock, fcgiPost("/readbody", 100000), bytes.Repeat([]byte("r"), 10000), false)
	viaNginx := httpStall(t, n, "/readbody", 100000, bytes.Repeat([]byte("n"), 10000))
	a, err := fcgiRead(raw, 8*time.Second)
	if err != nil || a.status != 408 {
		t.Fatalf("straight to the socket: %+v %v, want a 408", a, err)
	}
	if code, err := httpStatus(viaNginx, 8*time.Second); err != nil || code != 408 {
		t.Errorf("through nginx: %d %v, want a 408", code, err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > 5*time.Second {
		t.Errorf("ended after %v, want about socket-timeout (2 s)", d)
	}
	if got := waitLines(s, 2, "readbody: OSError 'request data read error'"); got != 2 {
		t.Errorf("the application's read raised %d times, want 2:\n%s", got, s.log.String())
	}
	if got := waitLines(s, 2, `"status":408`, "request body sent nothing in time"); got != 2 {
		t.Errorf("%d access-log lines with 408, want 2", got)
	}
}

// A body declared larger than body-buffer-size (1 MiB by default) takes a
// worker thread once its first 64 KiB are here, not before: one that
// stalls short of them never reaches the application, one that stalls
// past them (and short of the 1 MiB) is read by it. Both end with 408.
func TestLargeBodyTakesAThreadAfterItsFirst64KiB(t *testing.T) {
	s, _, _ := daemonSetup(t, "threads = 2\nsocket-timeout = 2\n")
	short := fcgiSend(t, s.sock, fcgiPost("/readbody", 4<<20), bytes.Repeat([]byte("s"), 60000), false)
	past := fcgiSend(t, s.sock, fcgiPost("/readbody", 4<<20), bytes.Repeat([]byte("p"), 100000), false)
	for name, c := range map[string]net.Conn{"short of 64 KiB": short, "past 64 KiB": past} {
		if a, err := fcgiRead(c, 8*time.Second); err != nil || a.status != 408 {
			t.Errorf("a body stalled %s: %+v %v, want a 408", name, a, err)
		}
	}
	if got := waitLines(s, 2, `"status":408`, "request body sent nothing in time"); got != 2 {
		t.Errorf("%d access-log lines with 408, want 2", got)
	}
	if got := countLines(s, "readbody: OSError 'request data read error'"); got != 1 {
		t.Errorf("%d stalled bodies reached the application, want the one past 64 KiB:\n%s", got, s.log.lines("readbody:"))
	}
}

// A body that ends before CONTENT_LENGTH (STDIN ends short, or the client
// leaves nginx mid-upload) makes the application's read raise OSError, as
// mod_wsgi's "request data read error"; the access log says so.
func TestTruncatedBodyRaises(t *testing.T) {
	s, n, _ := daemonSetupWith(t, "threads = 2\nbody-buffer-size = 4096\n", nginxUnbuffered)
	pidOf(t, n)
	raw := fcgiSend(t, s.sock, fcgiPost("/readbody", 5000), []byte("0123456789"), true)
	a, err := fcgiRead(raw, 10*time.Second)
	if err != nil || a.status != 400 {
		t.Fatalf("truncated body straight to the socket: %+v %v, want a 400", a, err)
	}
	if !s.waitLog("readbody: OSError 'request data read error'", 5*time.Second) {
		t.Fatalf("the application's read did not raise:\n%s", s.log.String())
	}
	if got := waitLines(s, 1, `"status":400`, "request body truncated", "10 of 5000 bytes"); got != 1 {
		t.Errorf("%d access-log lines of the truncated body, want 1:\n%s", got, s.log.String())
	}

	// Through nginx: the client sends 10,000 of 50,000 bytes (more than
	// body-buffer-size: the application reads them) and leaves.
	c := httpStall(t, n, "/readbody", 50000, bytes.Repeat([]byte("n"), 10000))
	time.Sleep(300 * time.Millisecond) // the request reaches the application
	c.Close()
	if got := waitLines(s, 2, "readbody: OSError 'request data read error'"); got != 2 {
		t.Fatalf("through nginx, the application's read did not raise when the client left:\n%s", s.log.String())
	}
	// A whole body still reads whole.
	code, b := post(t, n.url+"/readbody", strings.NewReader(strings.Repeat("x", 5000)))
	if code != 200 || string(b) != "5000 bytes\n" {
		t.Fatalf("whole body: %d %q", code, b)
	}
}

// request-timeout answers 504 at the timeout, through nginx and straight
// to the socket; the worker is replaced in the background, and the log
// says what happened (no client went away).
func TestRequestTimeoutAnswersAtTheTimeout(t *testing.T) {
	s, n, _ := daemonSetup(t, "threads = 2\nrequest-timeout = 2\n")
	before := pidOf(t, n)
	start := time.Now()
	code, _ := get(t, n.url+"/sleep?30")
	if d := time.Since(start); code != 504 || d < 1900*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("through nginx: %d after %v, want 504 at 2 s", code, d)
	}
	start = time.Now()
	r := fcgiDo(t, s.sock, fcgiGet("/sleep", fcgiParam{"QUERY_STRING", "30"}), nil)
	if d := time.Since(start); r.status != 504 || d < 1900*time.Millisecond || d > 2500*time.Millisecond {
		t.Fatalf("straight to the socket: %d after %v, want 504 at 2 s", r.status, d)
	}
	if after := pidOf(t, n); after == before {
		t.Fatalf("the stuck worker %d was not replaced", before)
	}
	if got := waitLines(s, 2, "request-timeout reached: answered 504"); got != 2 {
		t.Errorf("%d request-timeout lines, want 2", got)
	}
	if strings.Contains(s.log.String(), "client went away") || strings.Contains(s.log.String(), "did not stop after") {
		t.Errorf("the log blames a client:\n%s", s.log.String())
	}
}

// SIGTERM under load: the listener stays open while the request in flight
// finishes; new requests get a prompt 503 (FCGI_OVERLOADED straight to the
// socket), never a connect error, and the one in flight completes.
func TestShutdownUnderLoadAnswers503(t *testing.T) {
	s, n, dir := daemonSetup(t, "threads = 4\nshutdown-timeout = 10\n")
	pidOf(t, n)
	long := make(chan int, 1)
	go func() {
		resp, err := client.Get(n.url + "/sleep?3")
		if err != nil {
			long <- -1
			return
		}
		resp.Body.Close()
		long <- resp.StatusCode
	}()
	var (
		mu       sync.Mutex
		codes    = map[int]int{}
		failures []string
		slow503  int
	)
	stopLoad := underLoad(4, func() {
		start := time.Now()
		resp, err := client.Get(n.url + "/pid")
		mu.Lock()
		if err != nil {
			failures = append(failures, err.Error())
		} else {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[resp.StatusCode]++
			if resp.StatusCode == 503 && time.Since(start) > time.Second {
				slow503++
			}
		}
		mu.Unlock()
	})
	time.Sleep(700 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGTERM)
	if !s.waitLog("draining", 5*time.Second) {
		t.Fatal("no drain logged")
	}
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 5; i++ {
		start := time.Now()
		c := fcgiSend(t, s.sock, fcgiGet("/pid"), nil, true) // fails the test on a connect error
		a, err := fcgiRead(c, 5*time.Second)
		if err != nil || a.status != 503 || a.protocol != 2 || time.Since(start) > time.Second {
			t.Errorf("straight to the socket while draining: %+v %v after %v, want a prompt 503 with FCGI_OVERLOADED", a, err, time.Since(start))
		}
	}
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	if code := <-long; code != 200 {
		t.Errorf("the request in flight at SIGTERM: %d, want 200", code)
	}
	if code := s.exitCode(3 * time.Second); code != 0 {
		t.Errorf("exit code %d (-1: still running 3 s after the last request ended)", code)
	}
	if len(failures) > 0 || slow503 > 0 {
		t.Errorf("%d failed requests (%q), %d slow 503s", len(failures), failures, slow503)
	}
	for code, k := range codes {
		if code != 200 && code != 503 {
			t.Errorf("%d answers %d during the drain", k, code)
		}
	}
	if codes[503] == 0 || codes[200] == 0 {
		t.Errorf("answers %v: want 200s before SIGTERM and 503s after", codes)
	}
	errLog, _ := os.ReadFile(filepath.Join(dir, "nginx", "logs", "error.log"))
	if bytes.Contains(errLog, []byte("connect() to")) {
		t.Errorf("nginx could not connect during the drain:\n%s", errLog)
	}
}

// A request still running when shutdown-timeout passes is cut and logged
// as cut by shutdown, not as a client that went away.
func TestShutdownTimeoutCutIsLogged(t *testing.T) {
	s, n, _ := daemonSetup(t, "threads = 2\nshutdown-timeout = 1\ngraceful-timeout = 1\n")
	pidOf(t, n)
	go client.Get(n.url + "/sleep?30")
	time.Sleep(500 * time.Millisecond)
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.exitCode(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if got := waitLines(s, 1, `"status":503`, "request cut by shutdown"); got != 1 {
		t.Errorf("%d requests logged as cut by shutdown, want 1:\n%s", got, s.log.String())
	}
	if countLines(s, `"status":499`) > 0 {
		t.Errorf("a cut request logged as a client gone:\n%s", s.log.String())
	}
}

// A big upload streamed through nginx with request buffering off still
// crosses with bounded memory: only its first body-buffer-size bytes are
// waited for (and the bridge spools what the application has not read).
func TestUnbufferedUploadBoundedMemory(t *testing.T) {
	dir := testDir(t)
	apps := appsDir(t, dir)
	s := startServer(t, dir, spineConf(apps, 1, 2))
	n := startNginx(t, dir, s.sock, nginxUnbuffered)
	const size = 256 << 20
	block := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(repeatReader(block), size), h)
	req, err := http.NewRequest("POST", n.url+"/sha", body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf("%x %d\n", h.Sum(nil), size)
	if resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("256 MiB upload: %d %q, want %q", resp.StatusCode, b, want)
	}
	if rss := s.peakRSS(); rss > 64<<10 {
		t.Fatalf("bridge peak RSS %d KiB, want < 64 MiB", rss)
	}
}

// repeatReader repeats block forever.
func repeatReader(block []byte) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		n := 0
		for n < len(p) {
			n += copy(p[n:], block)
		}
		return n, nil
	})
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
