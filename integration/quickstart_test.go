package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The README's quick start: the shipped conf.d serves the example app
// through --http. The files are copied to a temp dir that the worker user
// (www-data, as root) can read wherever the checkout is.
func TestQuickStartConfig(t *testing.T) {
	dir := testDir(t)
	for _, d := range []string{"conf.d", "examples/hello"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"conf.d/00-server.toml", "conf.d/10-hello.toml", "examples/hello/hello.wsgi"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	cmd := exec.Command(binPath, "serve", "--http", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Dir = dir // the default -c is ./conf.d
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() { cmd.Process.Kill(); <-done }()
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), done, &out)
	code, body := get(t, fmt.Sprintf("http://127.0.0.1:%d/", port))
	if code != 200 || !strings.HasPrefix(body, "Hello from wsgifcgi!") {
		t.Fatalf("GET / = %d %q\n%s", code, body, out.String())
	}
}
