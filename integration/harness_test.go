// Package integration runs the real wsgifcgi binary with real Python workers
// behind real front ends (nginx), each test in its own temp dir on loopback.
package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wsgifcgi/wsgifcgi/internal/testlog"
)

// binPath is the wsgifcgi binary built once for all tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wsgifcgi-bin-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	binPath = filepath.Join(dir, "wsgifcgi")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", binPath, "./cmd/wsgifcgi")
	build.Dir = filepath.Dir(filepath.Dir(file))
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building wsgifcgi:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// python is the interpreter the workers run: Debian's, which an
// unprivileged worker user can execute (and which has Django and Flask).
const python = "/usr/bin/python3"

// testDir is a temp dir that a worker running as an unprivileged user can read.
func testDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		os.Chmod(p, 0o755)
	}
	return d
}

// appsDir copies the test apps into dir and returns the copy's path.
func appsDir(t *testing.T, dir string) string {
	t.Helper()
	dst := filepath.Join(dir, "apps")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("testdata/apps")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("testdata/apps", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// workerUser is the [embedded]/[daemon] user lines the tests need: as root,
// workers must run as an unprivileged user.
func workerUser() string {
	if os.Geteuid() == 0 {
		return "user = \"nobody\"\ngroup = \"nogroup\"\n"
	}
	return ""
}

// server is a running wsgifcgi.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	sock string
	log  *syncBuffer
	done chan struct{}
}

// startServer writes conf into dir/conf.d/00-test.toml and starts the binary
// with a unix listener in dir; extra args follow.
func startServer(t *testing.T, dir, conf string, extra ...string) *server {
	t.Helper()
	confDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(confDir, 0o755)
	if err := os.WriteFile(filepath.Join(confDir, "00-test.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "fcgi.sock")
	args := append([]string{"serve", "-c", confDir, "--listen", "unix:" + sock}, extra...)
	cmd := exec.Command(binPath, args...)
	cmd.Dir = dir
	s := &server{t: t, cmd: cmd, sock: sock, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("wsgifcgi log:\n%s", s.log.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("wsgifcgi exited at start: %v\n%s", cmd.ProcessState, s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("wsgifcgi did not listen on %s\n%s", sock, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the exit (SIGKILL after 20 s).
func (s *server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.t.Errorf("wsgifcgi did not exit on SIGTERM")
		s.cmd.Process.Kill()
		<-s.done
	}
}

// exitCode waits for the process and returns its exit code.
func (s *server) exitCode(timeout time.Duration) int {
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// peakRSS is the bridge's VmHWM in KiB.
func (s *server) peakRSS() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		s.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	s.t.Fatal("no VmHWM")
	return 0
}

// waitLog waits until the log contains substr.
func (s *server) waitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(s.log.String(), substr) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// nginx is a running nginx in front of a server.
type nginx struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// startNginx runs nginx on a free loopback port with the given location
// blocks inside its server block; {{SOCK}} is replaced by the socket path.
// The upstream "wsgifcgi" is the unix socket sock, with keep-alive.
func startNginx(t *testing.T, dir, sock, locations string) *nginx {
	t.Helper()
	upstream := fmt.Sprintf("upstream wsgifcgi {\n    server unix:%s;\n    keepalive 4;\n}\n", sock)
	return startNginxWith(t, dir, upstream, strings.ReplaceAll(locations, "{{SOCK}}", sock))
}

// startNginxWith runs nginx on a free loopback port with httpBlock (the
// upstream blocks) in its http block and locations in its server block.
func startNginxWith(t *testing.T, dir, httpBlock, locations string) *nginx {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/nginx"); err2 != nil {
			t.Fatalf("nginx is not installed (make deps installs it): %v", err)
		}
		bin = "/usr/sbin/nginx"
	}
	port := freePort(t)
	prefix := filepath.Join(dir, "nginx")
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	conf := fmt.Sprintf(`%s
daemon off;
worker_processes 1;
error_log %[2]s/logs/error.log info;
pid %[2]s/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[2]s/client_body;
    fastcgi_temp_path %[2]s/fastcgi;
    proxy_temp_path %[2]s/proxy;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    client_max_body_size 0;
%[3]s
    server {
        listen 127.0.0.1:%[4]d;
        server_name localhost;
%[5]s
    }
}
`, user, prefix, httpBlock, port, locations)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &nginx{url: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(prefix, "logs", "error.log"))
			t.Logf("nginx error.log:\n%s\n%s", b, out.String())
		}
	})
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), n.done, &out)
	return n
}

// nginxFastCGI is the usual location block: stock fastcgi_params, keep-alive.
const nginxFastCGI = `
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_NAME "";
            fastcgi_pass wsgifcgi;
            fastcgi_keep_conn on;
        }
        location /stream/ {
            include /etc/nginx/fastcgi_params;
            fastcgi_pass wsgifcgi;
            fastcgi_keep_conn on;
            fastcgi_buffering off;
        }
`

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitTCP(t *testing.T, addr string, done chan struct{}, out fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("process exited before listening on %s:\n%s", addr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is the HTTP client of the tests: no proxy, bounded time.
var client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	code, b := answer(t, "GET "+url, resp, err)
	return code, string(b)
}

// post posts body to url and returns the status and the answer's body.
func post(t *testing.T, url string, body io.Reader) (int, []byte) {
	t.Helper()
	resp, err := client.Post(url, "application/octet-stream", body)
	return answer(t, "POST "+url, resp, err)
}

// answer reads a whole response of what (a request's method and URL).
func answer(t *testing.T, what string, resp *http.Response, err error) (int, []byte) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading body: %v", what, err)
	}
	return resp.StatusCode, b
}

// syncBuffer is safe for a process's output and the test.
type syncBuffer struct{ testlog.Buffer }

// lines returns the log lines containing substr.
func (s *syncBuffer) lines(substr string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), substr) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// streamed is a response read as its first 6 bytes, then the rest, with
// the time each part took to arrive.
type streamed struct {
	code         int
	head, rest   string
	first, total time.Duration
}

// getStream GETs url (the apps' /stream/gen: "first\n", a second's sleep,
// "second\n") and times its two parts.
func getStream(t *testing.T, url string) streamed {
	t.Helper()
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	s := streamed{code: resp.StatusCode, head: string(buf), first: time.Since(start)}
	rest, _ := io.ReadAll(resp.Body)
	s.rest, s.total = string(rest), time.Since(start)
	return s
}

// underLoad runs f from n clients, each over and over, until the stop it
// returns is called; stop waits for the clients to finish.
func underLoad(n int, f func()) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				f()
			}
		}()
	}
	return func() { close(done); wg.Wait() }
}
