package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSystemdSocketActivation starts wsgifcgi as systemd starts a
// socket-activated service: no listener configured, the listening socket
// on fd 3, LISTEN_FDS=1, LISTEN_FDNAMES, and LISTEN_PID set to the
// service's own pid (systemd sets it after the fork; a shell that execs
// the binary does the same here).
func TestSystemdSocketActivation(t *testing.T) {
	dir := testDir(t)
	b, err := os.ReadFile("testdata/lifecycle/app.wsgi")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "app.wsgi")
	os.WriteFile(script, b, 0o644)
	confDir := filepath.Join(dir, "conf.d")
	os.MkdirAll(confDir, 0o755)
	conf := fmt.Sprintf(`
[server]
python-executable = %q

[embedded]
%s
[[script-alias]]
url = "/"
path = %q
`, python, workerUser(), script)
	if err := os.WriteFile(filepath.Join(confDir, "00-test.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	sock := filepath.Join(dir, "fcgi.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false)
	f, err := ul.File()
	if err != nil {
		t.Fatal(err)
	}
	ul.Close() // the child's copy (fd 3) is the socket now
	sockTarget, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" serve -c "$1"`, binPath, confDir)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=wsgifcgi.socket")
	cmd.ExtraFiles = []*os.File{f}
	s := &server{t: t, cmd: cmd, sock: sock, log: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("wsgifcgi log:\n%s", s.log.String())
		}
	})
	if !s.waitLog(`"message":"serving FastCGI"`, 15*time.Second) {
		t.Fatal("wsgifcgi does not serve the socket systemd passed")
	}

	// A FastCGI request on the socket is answered by a worker.
	res := fcgiDo(t, sock, fcgiGet("/ids"), nil)
	if res.status != 200 {
		t.Fatalf("GET /ids: %d %q", res.status, res.body)
	}
	var ids struct{ Pid int }
	if err := json.Unmarshal([]byte(res.body), &ids); err != nil || ids.Pid == 0 {
		t.Fatalf("GET /ids: %q: %v", res.body, err)
	}
	pid := ids.Pid
	// The worker inherits neither the variables nor the socket.
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range strings.Split(string(env), "\x00") {
		if strings.HasPrefix(v, "LISTEN_") {
			t.Errorf("the worker's environment has %s", v)
		}
	}
	if fds := fdsOf(pid, sockTarget); len(fds) > 0 {
		t.Errorf("the worker inherited the listening socket as fd %v", fds)
	}

	// SIGTERM: exit 0, and the socket file (systemd's) stays.
	s.stop()
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Errorf("the socket file of the .socket unit was removed: %v", err)
	}
}

// fdsOf lists the descriptors of pid that are target ("socket:[INODE]").
func fdsOf(pid int, target string) []string {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil && l == target {
			out = append(out, e.Name())
		}
	}
	return out
}
