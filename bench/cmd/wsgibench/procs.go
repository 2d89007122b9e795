package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a process the harness started, in its own process group so that
// it and its children can be stopped together by that group's id.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

var (
	procsMu  sync.Mutex
	procs    []*proc
	stopping bool // set on a signal: nothing new is started
	// stopCtx is cancelled on a signal; the load generators run under it.
	stopCtx, cancelStop = context.WithCancel(context.Background())
)

func isStopping() bool {
	procsMu.Lock()
	defer procsMu.Unlock()
	return stopping
}

// beginStopping makes start refuse new processes and ends running wrk's.
func beginStopping() {
	procsMu.Lock()
	stopping = true
	procsMu.Unlock()
	cancelStop()
}

// start runs argv in its own process group with stdout and stderr sent to
// dir/name.log.
func start(dir, name string, env []string, argv ...string) (*proc, error) {
	return startAs(dir, name, env, nil, argv...)
}

// startAs is start with the process run as cred (nil: as the harness).
func startAs(dir, name string, env []string, cred *syscall.Credential, argv ...string) (*proc, error) {
	logPath := fmt.Sprintf("%s/%s.log", dir, name)
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	procsMu.Lock()
	defer procsMu.Unlock()
	if stopping {
		return nil, fmt.Errorf("%s: not started, stopping", name)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	procs = append(procs, p)
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process, waits for it, then kills what is left
// of its process group (the group id is its pid).
func (p *proc) stop() {
	pid := p.pid()
	if !p.exited() {
		syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Children that outlived their parent (workers, mod_wsgi daemons).
	if syscall.Kill(-pid, 0) == nil {
		syscall.Kill(-pid, syscall.SIGTERM)
		for i := 0; i < 50 && syscall.Kill(-pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	procsMu.Lock()
	for i, q := range procs {
		if q == p {
			procs = append(procs[:i], procs[i+1:]...)
			break
		}
	}
	procsMu.Unlock()
}

// stopAll stops every process still running, the last started first.
func stopAll() {
	for {
		procsMu.Lock()
		if len(procs) == 0 {
			procsMu.Unlock()
			return
		}
		p := procs[len(procs)-1]
		procsMu.Unlock()
		p.stop()
	}
}

func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls until ok is true, the process exits, or the timeout passes.
func waitFor(p *proc, timeout time.Duration, what string, ok func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ok() {
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited before %s:\n%s", p.name, what, p.tail(15))
		}
		time.Sleep(50 * time.Millisecond)
	}
	tail := ""
	if p != nil {
		tail = "\n" + p.tail(15)
	}
	return fmt.Errorf("timed out waiting for %s%s", what, tail)
}

func dialOK(network, addr string) func() bool {
	return func() bool {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
}

var httpc = &http.Client{Timeout: 30 * time.Second}

// getBody fetches url and returns its status and body.
func getBody(url string) (int, string, error) {
	code, body, _, err := fetch("GET", url, "")
	return code, body, err
}

// fetch makes one request and returns the status, the body's first 4 KiB
// and its length.
func fetch(method, url, body string) (code int, head string, n int64, err error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", 0, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, "", 0, err
	}
	defer resp.Body.Close()
	var sb strings.Builder
	n, err = io.Copy(&limitWriter{&sb, 4096}, resp.Body)
	return resp.StatusCode, sb.String(), n, err
}

// limitWriter keeps the first n bytes written to it and discards the rest.
type limitWriter struct {
	sb *strings.Builder
	n  int
}

func (w *limitWriter) Write(p []byte) (int, error) {
	if k := min(len(p), w.n-w.sb.Len()); k > 0 {
		w.sb.Write(p[:k])
	}
	return len(p), nil
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// procStatus reads a "VmRSS:   1234 kB" style field of /proc/PID/status in KiB.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			f := strings.Fields(line[len(field)+1:])
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// resetPeak resets VmHWM of pid to its current RSS (clear_refs 5).
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}
