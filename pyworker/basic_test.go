package pyworker

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHello(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 2})
	out, res, err, _ := serve(t, w, env(t, "hello.wsgi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "Hello World!" || res.Status != 200 || !res.HeadersSent || res.BytesOut != 12 {
		t.Fatalf("got %q %+v", out.String(), res)
	}
	want := "Status: 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
	if out.header != want {
		t.Fatalf("header block %q, want %q", out.header, want)
	}
	if w.InFlight() != 0 {
		t.Fatalf("InFlight %d after the request", w.InFlight())
	}
}

func TestPostEcho(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 2})
	body := "name=value&x=1"
	out, _, err, _ := serve(t, w, env(t, "echo.wsgi", "REQUEST_METHOD", "POST", "CONTENT_LENGTH", itoa(len(body))), strings.NewReader(body))
	if err != nil || out.String() != body {
		t.Fatalf("got %q, %v", out.String(), err)
	}
	if !strings.Contains(out.header, "Content-Length: 14\r\n") {
		t.Fatalf("header %q", out.header)
	}
}

func TestEnvironAdded(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 3, Multiprocess: true, ProcessGroup: "site1"})
	out, _, err, _ := serve(t, w, env(t, "environ.wsgi", "CUSTOM", "é-latin1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"wsgi.version=(1, 0)", "wsgi.multithread=True", "wsgi.multiprocess=True",
		"wsgi.run_once=False", "wsgi.input_terminated=True", "wsgi.url_scheme='http'",
		"name=_mod_wsgi_", "argv=['mod_wsgi']", "mod_wsgi.process_group=site1", "custom=é-latin1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("environ report %q lacks %q", out.String(), want)
		}
	}
}

func TestBigBodyEcho(t *testing.T) {
	for _, threads := range []int{1, 2} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) { testBigBodyEcho(t, threads) })
	}
}

func testBigBodyEcho(t *testing.T, threads int) {
	w, _ := startWorker(t, Config{Threads: threads})
	body := make([]byte, 10<<20)
	for i := range body {
		body[i] = byte(i * 7 / 3)
	}
	out, res, err, _ := serve(t, w, env(t, "echo.wsgi", "REQUEST_METHOD", "POST",
		"CONTENT_LENGTH", itoa(len(body)), "QUERY_STRING", "chunks"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesOut != int64(len(body)) || sha(out.body.Bytes()) != sha(body) {
		t.Fatalf("echo of 10 MiB differs: %d bytes back", res.BytesOut)
	}
	// The same through read(n) loops and a digest computed by the app.
	out, _, err, _ = serve(t, w, env(t, "echo.wsgi", "REQUEST_METHOD", "POST",
		"CONTENT_LENGTH", itoa(len(body)), "QUERY_STRING", "sha256"), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(body)); out.String() != want {
		t.Fatalf("app digest %s, want %s", out.String(), want)
	}
}

func TestInputReading(t *testing.T) {
	w, _ := startWorker(t, Config{})
	body := "one\ntwo\nthree\nfour"
	cases := map[string]string{
		"":               body,
		"none":           body,
		"read2":          "on|e\ntwo\nthree\nfour",
		"readline":       "one\n|two\n|three\n|four",
		"readline3":      "one|\n|two|\n|thr|ee\n|fou|r",
		"readlines":      "one\n|two\n|three\n|four",
		"readlines-hint": "one\n|two\n#three\nfour",
		"iter":           "one\n|two\n|three\n|four",
	}
	for mode, want := range cases {
		out, _, err, _ := serve(t, w, env(t, "echo.wsgi", "REQUEST_METHOD", "POST", "QUERY_STRING", mode,
			"CONTENT_LENGTH", itoa(len(body))), strings.NewReader(body+"EXTRA-BEYOND-CONTENT-LENGTH"))
		if err != nil || out.String() != want {
			t.Errorf("mode %q: got %q (%v), want %q", mode, out.String(), err, want)
		}
	}
	// Without CONTENT_LENGTH the body ends where the stream does.
	out, _, err, _ := serve(t, w, env(t, "echo.wsgi", "REQUEST_METHOD", "POST", "QUERY_STRING", "readline"),
		strings.NewReader("a\nb"))
	if err != nil || out.String() != "a\n|b" {
		t.Errorf("chunked body: got %q (%v)", out.String(), err)
	}
	// No body at all.
	out, _, err, _ = serve(t, w, env(t, "echo.wsgi"), nil)
	if err != nil || out.String() != "" {
		t.Errorf("no body: got %q (%v)", out.String(), err)
	}
}

func TestApplicationException(t *testing.T) {
	w, _ := startWorker(t, Config{})
	out, res, err, lb := serve(t, w, env(t, "raise.wsgi"), nil)
	if !errors.Is(err, ErrApplication) || res.HeadersSent || out.n != 0 {
		t.Fatalf("got %v %+v", err, res)
	}
	log := lb.String()
	for _, want := range []string{"Exception occurred processing WSGI script", "Traceback", "ValueError: boom-from-app", `"level":"error"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	_, _, err, lb = serve(t, w, env(t, "loaderror.wsgi"), nil)
	if !errors.Is(err, ErrApplication) || !strings.Contains(lb.String(), "cannot be loaded as Python module") ||
		!strings.Contains(lb.String(), "cannot-load-me") {
		t.Fatalf("load error: %v\n%s", err, lb.String())
	}
}

func TestNotFoundAndNoCallable(t *testing.T) {
	w, _ := startWorker(t, Config{})
	_, res, err, lb := serve(t, w, env(t, "missing.wsgi"), nil)
	if !errors.Is(err, ErrNotFound) || res.HeadersSent {
		t.Fatalf("missing script: %v", err)
	}
	if !strings.Contains(lb.String(), "Target WSGI script not found") {
		t.Errorf("log: %s", lb.String())
	}
	_, _, err, lb = serve(t, w, env(t, "nocallable.wsgi"), nil)
	if !errors.Is(err, ErrApplication) {
		t.Fatalf("missing callable: %v", err)
	}
	want := fmt.Sprintf("Target WSGI script '%s' does not contain WSGI application 'application'.", testdata(t, "nocallable.wsgi"))
	if !strings.Contains(lb.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, lb.String())
	}
	// mod_wsgi.callable_object names another callable.
	out, _, err, _ := serve(t, w, env(t, "nocallable.wsgi", "mod_wsgi.callable_object", "other"), nil)
	if err != nil || out.String() != "other" {
		t.Fatalf("callable_object: %q %v", out.String(), err)
	}
}

func TestBadHeaders(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 2})
	for _, mode := range []string{"crlf", "lf", "nul", "hop", "te", "name", "status", "statuscrlf", "notlist", "bytes", "unicode"} {
		out, res, err, lb := serve(t, w, env(t, "headers.wsgi", "QUERY_STRING", mode), nil)
		if !errors.Is(err, ErrApplication) || res.HeadersSent || out.n != 0 {
			t.Errorf("%s: got %v %+v %q", mode, err, res, out.header)
		}
		if !strings.Contains(lb.String(), "Traceback") {
			t.Errorf("%s: no traceback logged: %s", mode, lb.String())
		}
	}
	out, res, err, _ := serve(t, w, env(t, "headers.wsgi", "QUERY_STRING", "good"), nil)
	if err != nil || res.Status != 201 || out.header != "Status: 201 Created\r\nX-Ok: yes\r\nLocation: /x\r\n\r\n" {
		t.Fatalf("good headers: %v %q", err, out.header)
	}
}

func TestCGIHeadersRecheck(t *testing.T) {
	for _, p := range []string{"200 OK\x00X\x00a\rb", "20 OK", "200OK", "200 OK\x00Bad Name\x00v", "200 OK\x00X", "2x0 OK"} {
		if _, _, err := cgiHeaders([]byte(p)); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
	code, block, err := cgiHeaders([]byte("404 Not Found\x00A\x00b"))
	if err != nil || code != 404 || string(block) != "Status: 404 Not Found\r\nA: b\r\n\r\n" {
		t.Fatalf("%d %q %v", code, block, err)
	}
}

func TestStartResponseExcInfo(t *testing.T) {
	w, _ := startWorker(t, Config{})
	out, res, err, _ := serve(t, w, env(t, "excinfo.wsgi", "QUERY_STRING", "replace"), nil)
	if err != nil || res.Status != 500 || out.String() != "error page" {
		t.Errorf("replace: %v %+v %q", err, res, out.String())
	}
	out, res, err, lb := serve(t, w, env(t, "excinfo.wsgi", "QUERY_STRING", "after"), nil)
	if !errors.Is(err, ErrApplication) || !res.HeadersSent || res.Status != 200 || out.String() != "partial" ||
		!strings.Contains(lb.String(), "KeyError: 'too-late'") {
		t.Errorf("after: %v %+v %q\n%s", err, res, out.String(), lb.String())
	}
	for _, mode := range []string{"twice", "none", "str"} {
		_, res, err, lb := serve(t, w, env(t, "excinfo.wsgi", "QUERY_STRING", mode), nil)
		if !errors.Is(err, ErrApplication) || res.HeadersSent {
			t.Errorf("%s: %v %+v\n%s", mode, err, res, lb.String())
		}
	}
}

func TestWriteCallable(t *testing.T) {
	w, _ := startWorker(t, Config{})
	out, _, err, _ := serve(t, w, env(t, "write.wsgi"), nil)
	if err != nil || out.String() != "part1 part2 part3" {
		t.Fatalf("%q %v", out.String(), err)
	}
}

func TestFileWrapper(t *testing.T) {
	w, _ := startWorker(t, Config{})
	dir := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes
	path := filepath.Join(dir, "data.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	record := filepath.Join(dir, "record")
	out, _, err, _ := serve(t, w, env(t, "filewrapper.wsgi", "DATA_FILE", path, "RECORD_FILE", record), nil)
	if err != nil || !bytes.Equal(out.body.Bytes(), data) {
		t.Fatalf("whole file: %d bytes, %v", out.n, err)
	}
	if got, _ := os.ReadFile(record); string(got) != "closed after 21 reads" {
		t.Fatalf("record %q: the file is streamed in 4096-byte blocks and closed", got)
	}
	// Content-Length is honoured: the file is not read past it.
	out, _, err, _ = serve(t, w, env(t, "filewrapper.wsgi", "DATA_FILE", path, "RECORD_FILE", record, "QUERY_STRING", "5000"), nil)
	if err != nil || !bytes.Equal(out.body.Bytes(), data[:5000]) {
		t.Fatalf("Content-Length 5000: %d bytes, %v", out.n, err)
	}
	if got, _ := os.ReadFile(record); string(got) != "closed after 2 reads" {
		t.Fatalf("record %q", got)
	}
}

func TestValidatorHappy(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 2})
	body := "first line\nsecond"
	out, _, err, lb := serve(t, w, env(t, "validated.wsgi", "REQUEST_METHOD", "POST",
		"CONTENT_LENGTH", itoa(len(body)), "CONTENT_TYPE", "text/plain"), strings.NewReader(body))
	if err != nil || out.String() != "ok:first line\n|second|0" {
		t.Fatalf("%q %v\n%s", out.String(), err, lb.String())
	}
	if !strings.Contains(lb.String(), "validated request") {
		t.Errorf("wsgi.errors line missing: %s", lb.String())
	}
}

// A text longer than the largest frame the bridge takes from a worker
// arrives in pieces; in one frame it read as a broken worker, killed.
func TestLongErrorsText(t *testing.T) {
	w, _ := startWorker(t, Config{})
	out, _, err, lb := serve(t, w, env(t, "longlog.wsgi", "QUERY_STRING", "1"), nil) // MiB
	if err != nil || out.String() != "logged" {
		t.Fatalf("%q %v", out.String(), err)
	}
	if n := strings.Count(lb.String(), `"message":"e`); n <= (1<<20)/maxLog {
		t.Fatalf("%d log records for 1 MiB of text", n)
	}
	if _, _, err, _ := serve(t, w, env(t, "hello.wsgi"), nil); err != nil {
		t.Fatalf("the worker after the long text: %v", err)
	}
}

// A header block larger than the bridge takes is the application's
// error (500), and the worker goes on; one just under it passes.
func TestHeaderBlockLimit(t *testing.T) {
	w, _ := startWorker(t, Config{})
	kib := maxHead >> 10
	out, _, err, _ := serve(t, w, env(t, "bighead.wsgi", "QUERY_STRING", itoa(kib-1)), nil)
	if err != nil || out.String() != "sent" {
		t.Fatalf("%d KiB of headers: %q %v", kib-1, out.String(), err)
	}
	_, res, err, lb := serve(t, w, env(t, "bighead.wsgi", "QUERY_STRING", itoa(kib)), nil)
	if !errors.Is(err, ErrApplication) || res.HeadersSent || !strings.Contains(lb.String(), "larger than") {
		t.Fatalf("%d KiB of headers: %+v %v\n%s", kib, res, err, lb.String())
	}
	if _, _, err, _ := serve(t, w, env(t, "hello.wsgi"), nil); err != nil {
		t.Fatalf("the worker after it: %v", err)
	}
}

func TestErrorsReachCallLog(t *testing.T) {
	w, wlog := startWorker(t, Config{})
	_, _, err, lb := serve(t, w, env(t, "errors.wsgi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(lb.String(), "line from wsgi.errors") || !strings.Contains(lb.String(), `"level":"error"`) {
		t.Fatalf("call log: %s", lb.String())
	}
	// stderr of the process goes to the worker's log with its pid.
	wlog.waitFor(t, "line from stderr print")
	if !strings.Contains(wlog.String(), fmt.Sprintf(`"pid":%d`, w.Pid())) {
		t.Errorf("worker log lacks pid: %s", wlog.String())
	}
}

// Concurrent first requests must wait for a script being loaded by another
// thread, never run a half-executed module.
func TestConcurrentFirstLoad(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 6})
	errs := make(chan error, 6)
	for i := 0; i < 6; i++ {
		go func() {
			out, res, err, _ := serve(t, w, env(t, "slowimport.wsgi"), nil)
			if err == nil && (res.Status != 200 || out.String() != "loaded") {
				err = fmt.Errorf("status %d body %q", res.Status, out.String())
			}
			errs <- err
		}()
	}
	for i := 0; i < 6; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// A HEAD response's body does not cross the pipe: the headers come, the
// application runs to its end, no body bytes reach the Sink.
func TestHeadSendsNoBody(t *testing.T) {
	w, _ := startWorker(t, Config{})
	out, res, err, _ := serve(t, w, env(t, "big.wsgi", "REQUEST_METHOD", "HEAD", "QUERY_STRING", "4"), nil)
	if err != nil || !res.HeadersSent || res.Status != 200 {
		t.Fatalf("%v %+v", err, res)
	}
	if res.BytesOut != 0 || out.body.Len() != 0 {
		t.Fatalf("HEAD passed %d body bytes", res.BytesOut)
	}
	// The same request as GET still streams its 4 MiB.
	_, res, err, _ = serve(t, w, env(t, "big.wsgi", "QUERY_STRING", "4"), nil)
	if err != nil || res.BytesOut != 4<<20 {
		t.Fatalf("GET: %v, %d bytes", err, res.BytesOut)
	}
}

// offeredBody is a Lender whose loan is on offer before the worker asks
// (as the gateway offers it while the request waits): its first read after
// prefix fails with ErrLent until the loan is taken and repaid.
type offeredBody struct {
	prefix, rest []byte
	offered      bool
	repaid       [][]byte
}

func (b *offeredBody) Read(p []byte) (int, error) {
	if len(b.prefix) > 0 {
		n := copy(p, b.prefix)
		b.prefix = b.prefix[n:]
		return n, nil
	}
	if b.offered {
		return 0, ErrLent
	}
	if len(b.rest) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.rest)
	b.rest = b.rest[n:]
	return n, nil
}

func (b *offeredBody) WantLoan() bool { return true }

func (b *offeredBody) TakeLoan() *Loan {
	if !b.offered {
		return nil
	}
	return &Loan{FD: -1, Prefix: []byte("unparsed")}
}

func (b *offeredBody) Repay(leftover []byte, n int64, broken, stalled bool) {
	b.offered = false
	b.repaid = append(b.repaid, leftover)
}

// A worker that cannot borrow (lending is off) gives back a loan offered
// before it came, untouched, and reads the rest of the body as usual.
func TestOfferedLoanGoesBackToAWorkerThatCannotBorrow(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 1})
	b := &offeredBody{prefix: []byte(strings.Repeat("a", 1000)), rest: []byte(strings.Repeat("b", 3000)), offered: true}
	want := string(b.prefix) + string(b.rest)
	out, _, err, _ := serve(t, w, env(t, "echo.wsgi", "REQUEST_METHOD", "POST", "CONTENT_LENGTH", itoa(len(want))), b)
	if err != nil || out.String() != want {
		t.Fatalf("got %d bytes %.20q..., %v", out.body.Len(), out.String(), err)
	}
	if len(b.repaid) != 1 || string(b.repaid[0]) != "unparsed" {
		t.Fatalf("repaid %q, want the loan's prefix once", b.repaid)
	}
}
