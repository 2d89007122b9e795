package pyworker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestKilledWorker(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 2})
	lb := &logBuf{}
	errc := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			_, err := w.Serve(context.Background(), &Call{Environ: env(t, "sleep.wsgi", "QUERY_STRING", "30"), Out: newSink(), Log: lb.logger()})
			errc <- err
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(lb.String(), "sleeping") < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := syscall.Kill(w.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-errc:
			if !errors.Is(err, ErrWorkerLost) {
				t.Fatalf("got %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Serve did not return after the worker died")
		}
	}
	select {
	case <-w.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("Done not closed")
	}
	if err := w.ExitErr(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("ExitErr %v", err)
	}
	if _, err := w.Serve(context.Background(), &Call{Environ: env(t, "hello.wsgi"), Out: newSink()}); !errors.Is(err, ErrWorkerLost) {
		t.Fatalf("Serve on a dead worker: %v", err)
	}
}

func TestShutdownWaitsForInFlight(t *testing.T) {
	atexit := filepath.Join(t.TempDir(), "atexit")
	lb := &logBuf{}
	w, err := Start(Config{Python: python(t), Log: lb.logger(), Env: append(os.Environ(), "ATEXIT_FILE="+atexit)})
	if err != nil {
		t.Fatal(err)
	}
	out := newSink()
	errc := make(chan error, 1)
	clog := &logBuf{}
	go func() {
		_, err := w.Serve(context.Background(), &Call{Environ: env(t, "sleep.wsgi", "QUERY_STRING", "1"), Out: out, Log: clog.logger()})
		errc <- err
	}()
	clog.waitFor(t, "sleeping")
	if err := w.Shutdown(10 * time.Second); err != nil {
		t.Fatalf("Shutdown: %v\n%s", err, lb.String())
	}
	if err := <-errc; err != nil || out.String() != "slept" {
		t.Fatalf("in-flight request: %q %v", out.String(), err)
	}
	if got, _ := os.ReadFile(atexit); string(got) != "atexit ran" {
		t.Fatalf("atexit: %q", got)
	}
	if _, err := w.Serve(context.Background(), &Call{Environ: env(t, "hello.wsgi"), Out: newSink()}); !errors.Is(err, ErrClosed) && !errors.Is(err, ErrWorkerLost) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownBySIGTERM(t *testing.T) {
	lb := &logBuf{}
	w, err := Start(Config{Python: python(t), Log: lb.logger()})
	if err != nil {
		t.Fatal(err)
	}
	syscall.Kill(w.Pid(), syscall.SIGTERM)
	select {
	case <-w.Done():
		if err := w.ExitErr(); err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(5 * time.Second):
		w.Kill()
		t.Fatal("no exit after SIGTERM")
	}
}

func TestScriptReloading(t *testing.T) {
	w, _ := startWorker(t, Config{})
	script := filepath.Join(t.TempDir(), "app.wsgi")
	write := func(v string, mtime time.Time) {
		src := "def application(e, sr):\n    sr('200 OK', [])\n    return [b'" + v + "']\n"
		if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(script, mtime, mtime)
	}
	get := func(kv ...string) (string, error) {
		e := env(t, "hello.wsgi", append([]string{"SCRIPT_FILENAME", script}, kv...)...)
		out, _, err, _ := serve(t, w, e, nil)
		return out.String(), err
	}
	now := time.Now()
	write("v1", now.Add(-time.Hour))
	if got, err := get(); got != "v1" || err != nil {
		t.Fatalf("%q %v", got, err)
	}
	write("v2", now)
	if got, _ := get("mod_wsgi.script_reloading", "0"); got != "v1" {
		t.Fatalf("reloaded with script_reloading off: %q", got)
	}
	if got, err := get(); got != "v2" || err != nil {
		t.Fatalf("after change: %q %v", got, err)
	}
	write("v3", now.Add(time.Hour))
	if _, err := get("mod_wsgi.reload_mechanism", "process"); !errors.Is(err, ErrReloadRequired) || !errors.Is(err, ErrClosed) {
		t.Fatalf("process reload: %v", err)
	}
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("worker did not retire after a process reload")
	}
}

func TestRestrictions(t *testing.T) {
	w, wlog := startWorker(t, Config{RestrictStdin: true, RestrictStdout: true, RestrictSignal: true})
	out, _, err, _ := serve(t, w, env(t, "restrict.wsgi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "print: sys.stdout access restricted by mod_wsgi\nstdin: sys.stdin access restricted by mod_wsgi\n" +
		"buffer: OSError: sys.stdout access restricted by mod_wsgi\n" +
		"encoding: OSError: sys.stdout access restricted by mod_wsgi\n" +
		"fileno: OSError: sys.stdout access restricted by mod_wsgi\n" +
		"stdin.buffer: OSError: sys.stdin access restricted by mod_wsgi\n" +
		"signal returned <Handlers.SIG_IGN: 1>"
	if out.String() != want {
		t.Fatalf("restricted: %q", out.String())
	}
	pid := strconv.Itoa(w.Pid())
	wlog.waitFor(t, "mod_wsgi (pid="+pid+"): Callback registration for signal 10 ignored.")
	// The log says which key lifts each restriction.
	wlog.waitFor(t, "sys.stdout access restricted by mod_wsgi; set restrict-stdout = false in [server]")
	wlog.waitFor(t, "sys.stdin access restricted by mod_wsgi; set restrict-stdin = false in [server]")

	w, wlog = startWorker(t, Config{})
	out, _, err, _ = serve(t, w, env(t, "restrict.wsgi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "print ok\nstdin ok\nbuffer ok\nencoding ok\nfileno ok\nstdin.buffer ok\nsignal: ValueError") {
		t.Fatalf("unrestricted: %q", out.String())
	}
	wlog.waitFor(t, "printed to stdout")
}

func TestImportScripts(t *testing.T) {
	script := testdata(t, "preload.wsgi")
	w, _ := startWorker(t, Config{ImportScripts: []string{script}})
	out, _, err, _ := serve(t, w, env(t, "preload.wsgi"), nil)
	if err != nil || out.String() != "loads=1 thread=MainThread" {
		t.Fatalf("%q %v", out.String(), err)
	}
}

func TestStartFailure(t *testing.T) {
	lb := &logBuf{}
	_, err := Start(Config{Python: python(t), Log: lb.logger(), PythonPath: []string{"/nonexistent"},
		Env: append(os.Environ(), "PYTHONSTARTUP="), Dir: "/nonexistent-dir"})
	if err == nil {
		t.Fatal("started in a missing directory")
	}
	_, err = Start(Config{Python: python(t), Log: lb.logger(), Optimize: 2, StartTimeout: 3 * time.Second,
		Env: append(os.Environ(), "PYTHONPATH="+testdata(t, "hang"))})
	if err == nil || !strings.Contains(err.Error(), "not ready") || !strings.Contains(err.Error(), "hanging at import") {
		t.Fatalf("hanging start: %v", err)
	}
}

func TestProcessTitle(t *testing.T) {
	w, _ := startWorker(t, Config{Argv0: "(wsgi:site1)", Optimize: 1})
	b, err := os.ReadFile("/proc/" + strconv.Itoa(w.Pid()) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if first, _, _ := strings.Cut(string(b), "\x00"); first != "(wsgi:site1)" {
		t.Fatalf("cmdline %q", b)
	}
	if out, _, err, _ := serve(t, w, env(t, "hello.wsgi"), nil); err != nil || out.String() != "Hello World!" {
		t.Fatalf("%q %v", out.String(), err)
	}
}

func TestSystemPython(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	w, _ := startWorker(t, Config{Python: "/usr/bin/python3", Threads: 2})
	if !strings.HasPrefix(w.PythonVersion(), "3.") {
		t.Fatalf("version %q", w.PythonVersion())
	}
	body := strings.Repeat("0123456789", 100000)
	out, _, err, _ := serve(t, w, env(t, "echo.wsgi", "REQUEST_METHOD", "POST", "CONTENT_LENGTH", itoa(len(body))), strings.NewReader(body))
	if err != nil || out.String() != body {
		t.Fatalf("echo under /usr/bin/python3: %d bytes, %v", out.n, err)
	}
}

// A worker that stopped reading its pipe (its one thread naps in the
// application) with the pipe full cannot take SHUTDOWN: Shutdown still
// returns at its timeout, having killed it.
func TestShutdownWithAFullPipe(t *testing.T) {
	w, _ := startWorker(t, Config{})
	go w.Serve(context.Background(), &Call{Environ: env(t, "nap.wsgi", "QUERY_STRING", "30"), Out: newSink()})
	time.Sleep(300 * time.Millisecond) // the nap runs: nothing reads the pipe
	// BODY frames of no request, 341 to a write of less than PIPE_BUF, so
	// that each write goes in whole or not at all.
	var frames [341 * headerSize]byte
	for i := 0; i < len(frames); i += headerSize {
		putHeader(frames[i:], tBody, 0, 1<<31, 0)
	}
	for {
		if err := w.toPy.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			t.Skipf("no write deadline on the pipe: %v", err)
		}
		if _, err := w.toPy.Write(frames[:]); err != nil {
			break // full
		}
	}
	if err := w.toPy.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	err := w.Shutdown(500 * time.Millisecond)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Shutdown took %v", took)
	}
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Shutdown: %v, want a kill", err)
	}
}

// A start given up (its context is done) kills the worker that hangs in
// its imports and says so, long before the start timeout.
func TestStartGivenUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err := StartContext(ctx, Config{Python: python(t), Log: (&logBuf{}).logger(), StartTimeout: 30 * time.Second,
		Env: append(os.Environ(), "PYTHONPATH="+testdata(t, "hang"))})
	if err == nil || !strings.Contains(err.Error(), "given up") {
		t.Fatalf("StartContext: %v", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("gave up after %v", took)
	}
}

// The daemon's home directory is not on sys.path: a json.py there (the
// worker imports json) shadows nothing.
func TestHomeDirShadowsNoModule(t *testing.T) {
	home := t.TempDir()
	marker := filepath.Join(home, "imported")
	src := "open(" + strconv.Quote(marker) + ", 'w').close()\nraise ImportError('the home directory shadowed json')\n"
	for _, name := range []string{"json.py", "select.py", "queue.py"} {
		if err := os.WriteFile(filepath.Join(home, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := startWorker(t, Config{Dir: home})
	if _, err := w.Serve(context.Background(), &Call{Environ: env(t, "hello.wsgi"), Out: newSink()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a module in the home directory was imported")
	}
}
