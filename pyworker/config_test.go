package pyworker

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPythonPathHonoursPth(t *testing.T) {
	dir := t.TempDir()
	site, extra := filepath.Join(dir, "site"), filepath.Join(dir, "extra")
	for _, f := range []struct{ path, text string }{
		{filepath.Join(site, "sitemod.py"), "NAME = 'site'\n"},
		{filepath.Join(site, "more.pth"), extra + "\n"},
		{filepath.Join(extra, "pthmod.py"), "NAME = 'pth'\n"},
	} {
		os.MkdirAll(filepath.Dir(f.path), 0o755)
		if err := os.WriteFile(f.path, []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := startWorker(t, Config{PythonPath: []string{site}})
	out, _, err, lb := serve(t, w, env(t, "imports.wsgi"), nil)
	if err != nil || out.String() != "site+pth" {
		t.Fatalf("%q %v\n%s", out.String(), err, lb.String())
	}
}

func TestPipeBufferSizes(t *testing.T) {
	w, _ := startWorker(t, Config{ReceiveBufferSize: 1 << 20, SendBufferSize: 512 << 10})
	for _, c := range []struct {
		f    *os.File
		want int
	}{{w.toPy, 1 << 20}, {w.fromPy, 512 << 10}} {
		rc, err := c.f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var n int
		rc.Control(func(fd uintptr) { n, err = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) })
		if err != nil || n != c.want {
			t.Errorf("pipe size %d (%v), want %d", n, err, c.want)
		}
	}
	if out, _, err, _ := serve(t, w, env(t, "hello.wsgi"), nil); err != nil || out.String() != "Hello World!" {
		t.Fatalf("%q %v", out.String(), err)
	}
}

// stack-size sets the stack of the request threads.
func TestStackSize(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 2, StackSize: 1 << 20})
	out, _, err, _ := serve(t, w, env(t, "stacksize.wsgi"), nil)
	if err != nil || out.String() != "1048576" {
		t.Fatalf("threading.stack_size() in a request = %q, %v; want 1048576", out.String(), err)
	}
}
