package pyworker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/wsgifcgi/wsgifcgi/internal/testlog"
)

// python is the interpreter the tests run (WSGIFCGI_TEST_PYTHON overrides).
func python(t testing.TB) string {
	if p := os.Getenv("WSGIFCGI_TEST_PYTHON"); p != "" {
		return p
	}
	p, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found")
	}
	return p
}

// logBuf is a concurrency-safe log destination the tests inspect.
type logBuf struct{ testlog.Buffer }

func (l *logBuf) logger() zerolog.Logger { return zerolog.New(l) }

// waitFor polls cond until it holds or the deadline passes.
func (l *logBuf) waitFor(t testing.TB, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("log never contained %q:\n%s", substr, l.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testdata(t testing.TB, name string) string {
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startWorker starts a worker that stops with the test.
func startWorker(t testing.TB, cfg Config) (*Worker, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	if cfg.Python == "" {
		cfg.Python = python(t)
	}
	cfg.Log = lb.logger()
	w, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-w.Done(): // the test ended it
			return
		default:
		}
		if err := w.Shutdown(5 * time.Second); err != nil {
			t.Errorf("Shutdown: %v\n%s", err, lb.String())
		}
	})
	return w, lb
}

// env builds a request environ for a script in testdata.
func env(t testing.TB, script string, kv ...string) *Environ {
	e := &Environ{}
	base := []string{
		"REQUEST_METHOD", "GET", "SCRIPT_NAME", "", "PATH_INFO", "/", "QUERY_STRING", "",
		"SERVER_NAME", "localhost", "SERVER_PORT", "80", "SERVER_PROTOCOL", "HTTP/1.1",
		"wsgi.url_scheme", "http", "SCRIPT_FILENAME", testdata(t, script),
		"mod_wsgi.callable_object", "application", "mod_wsgi.script_reloading", "1",
		"mod_wsgi.reload_mechanism", "module",
	}
	vals := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		vals[kv[i]] = kv[i+1]
	}
	for i := 0; i < len(base); i += 2 {
		if v, ok := vals[base[i]]; ok {
			base[i+1] = v
			delete(vals, base[i])
		}
		e.Add(base[i], base[i+1])
	}
	for i := 0; i < len(kv); i += 2 {
		if _, ok := vals[kv[i]]; ok {
			e.Add(kv[i], kv[i+1])
		}
	}
	return e
}

// sink records a response; with hash set it keeps only a digest.
type sink struct {
	mu       sync.Mutex
	status   int
	header   string
	body     bytes.Buffer
	hash     hash.Hash
	n        int64
	delay    time.Duration // per Write: a slow client
	first    chan struct{} // closed at the first Write
	times    []time.Time   // of each Write
	failWith error
}

func newSink() *sink { return &sink{first: make(chan struct{})} }

func (s *sink) WriteHeader(status int, block []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.header = status, string(block)
	return nil
}

func (s *sink) Write(p []byte) error {
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == 0 {
		close(s.first)
	}
	s.times = append(s.times, time.Now())
	s.n += int64(len(p))
	if s.hash != nil {
		s.hash.Write(p)
	} else {
		s.body.Write(p)
	}
	return s.failWith
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.body.String()
}

// serve runs one request with an optional body and returns the sink.
func serve(t testing.TB, w *Worker, e *Environ, body io.Reader) (*sink, Result, error, *logBuf) {
	t.Helper()
	out := newSink()
	lb := &logBuf{}
	res, err := w.Serve(context.Background(), &Call{Environ: e, Body: body, Out: out, Log: lb.logger()})
	return out, res, err, lb
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return string(h[:])
}

func itoa(n int) string { return strconv.Itoa(n) }
