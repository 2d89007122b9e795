package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Harness for the front ends of the matrix that the older tests do not
// start (nginx and Apache are in harness_test.go and
// apache_harness_test.go): lighttpd and Caddy, each from Debian's package
// (make deps installs them), in the foreground, with everything they
// write under the test's dir, on a free loopback port.

// frontProc is a front end running in the foreground.
type frontProc struct {
	url  string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

// startFrontProc starts cmd, waits until it listens on 127.0.0.1:port, and
// stops it by PID in t.Cleanup (SIGTERM, SIGKILL after 10 s). On failure
// the test log gets its output and the files in logs.
func startFrontProc(t *testing.T, name string, cmd *exec.Cmd, port int, logs ...string) *frontProc {
	t.Helper()
	p := &frontProc{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("%s did not exit on SIGTERM", name)
				cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.out.String())
			for _, f := range logs {
				b, _ := os.ReadFile(f)
				t.Logf("%s:\n%s", f, b)
			}
		}
	})
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), p.done, p.out)
	return p
}

// lookBin finds a front end's program or fails the test.
func lookBin(t *testing.T, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is not installed (make deps installs Debian's %s): %v", path, pkg, err)
	}
	return path
}

// startLighttpd runs lighttpd -D with a configuration of its own (port,
// document root, error log, pid file and upload dirs under dir/lighttpd)
// followed by body.
func startLighttpd(t *testing.T, dir, body string) *frontProc {
	t.Helper()
	bin := lookBin(t, "/usr/sbin/lighttpd", "lighttpd")
	root := filepath.Join(dir, "lighttpd")
	for _, d := range []string{"htdocs", "upload"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	conf := fmt.Sprintf(`server.document-root = %[1]q
server.bind = "127.0.0.1"
server.port = %[2]d
server.pid-file = %[3]q
server.errorlog = %[4]q
server.upload-dirs = ( %[5]q )
server.modules = ( )
%[6]s`, filepath.Join(root, "htdocs"), port, filepath.Join(root, "lighttpd.pid"),
		filepath.Join(root, "error.log"), filepath.Join(root, "upload"), body)
	confPath := filepath.Join(root, "lighttpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-D", "-f", confPath)
	cmd.Dir = root
	return startFrontProc(t, "lighttpd", cmd, port, filepath.Join(root, "error.log"))
}

// startCaddy runs caddy with a Caddyfile whose one site, plain HTTP on a
// free loopback port, has the directives in site. The admin endpoint is
// off and HOME and the XDG dirs are under dir/caddy, so Caddy writes
// nothing (autosave.json, storage) anywhere else.
func startCaddy(t *testing.T, dir, site string) *frontProc {
	t.Helper()
	bin := lookBin(t, "/usr/bin/caddy", "caddy")
	root := filepath.Join(dir, "caddy")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %[1]s/data
}
http://127.0.0.1:%[2]d {
%[3]s}
`, root, port, site)
	confPath := filepath.Join(root, "Caddyfile")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", confPath, "--adapter", "caddyfile")
	cmd.Dir = root
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + root,
		"XDG_CONFIG_HOME=" + filepath.Join(root, "config"), "XDG_DATA_HOME=" + filepath.Join(root, "data")}
	return startFrontProc(t, "caddy", cmd, port)
}
