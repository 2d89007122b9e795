package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemonSetup serves testdata/lifecycle/app.wsgi at / from [daemon.site1],
// whose options are given as TOML lines.
func daemonSetup(t *testing.T, options string) (*server, *nginx, string) {
	t.Helper()
	return daemonSetupWith(t, options, nginxFastCGI)
}

// daemonSetupWith is daemonSetup with nginx's location blocks given.
func daemonSetupWith(t *testing.T, options, locations string) (*server, *nginx, string) {
	t.Helper()
	dir := testDir(t)
	b, err := os.ReadFile("testdata/lifecycle/app.wsgi")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "app.wsgi")
	os.WriteFile(script, b, 0o644)
	conf := fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"
log-level = "debug"

[embedded]
%s
[daemon.site1]
%s
[[script-alias]]
url = "/"
path = %q
process-group = "site1"
application-group = "%%{GLOBAL}"
`, python, workerUser(), options, script)
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, locations)
	return s, n, dir
}

// terminate sends SIGTERM and waits for a clean exit: how long it took.
func terminate(t *testing.T, s *server) time.Duration {
	t.Helper()
	start := time.Now()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := s.exitCode(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	return time.Since(start)
}

func pidOf(t *testing.T, n *nginx) int {
	t.Helper()
	code, body := get(t, n.url+"/pid")
	pid, err := strconv.Atoi(body)
	if code != 200 || err != nil {
		t.Fatalf("GET /pid = %d %q", code, body)
	}
	return pid
}

func TestMaximumRequestsUnderLoadLosesNothing(t *testing.T) {
	_, n, _ := daemonSetup(t, "processes = 2\nthreads = 2\nmaximum-requests = 5\n")
	var wg sync.WaitGroup
	var mu sync.Mutex
	pids := map[string]bool{}
	failures := 0
	for c := 0; c < 6; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				resp, err := client.Get(n.url + "/pid")
				mu.Lock()
				if err != nil || resp.StatusCode != 200 {
					failures++
				}
				if err == nil {
					b := make([]byte, 32)
					k, _ := resp.Body.Read(b)
					resp.Body.Close()
					pids[string(b[:k])] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failures != 0 {
		t.Fatalf("%d of 90 requests failed while workers were recycled", failures)
	}
	if len(pids) < 10 {
		t.Fatalf("90 requests with maximum-requests=5 were served by %d processes", len(pids))
	}
}

func TestKilledWorkers(t *testing.T) {
	s, n, dir := daemonSetup(t, "processes = 2\nthreads = 4\n")
	// An idle worker killed: once its death is noticed (a request written to
	// it in the instant it dies is in flight, as in mod_wsgi), requests keep
	// succeeding on the other and the respawned one.
	idle := pidOf(t, n)
	syscall.Kill(idle, syscall.SIGKILL)
	if !s.waitLog(fmt.Sprintf(`"pid":%d,"in_flight":0,`, idle), 5*time.Second) {
		t.Fatal("the death of the idle worker was not logged")
	}
	for i := 0; i < 10; i++ {
		if code, body := get(t, n.url+"/pid"); code != 200 {
			t.Fatalf("after kill -9 of an idle worker: %d %q", code, body)
		}
	}
	// A busy worker killed: its request gets 502 at once, others succeed.
	os.Chmod(dir, 0o777) // the worker writes its pid file here
	pidfile := filepath.Join(dir, "busy.pid")
	type result struct {
		code int
		took time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		code, _ := get(t, n.url+"/sleep?30:"+pidfile)
		done <- result{code, time.Since(start)}
	}()
	busy := waitPidFile(t, pidfile)
	killed := time.Now()
	syscall.Kill(busy, syscall.SIGKILL)
	select {
	case r := <-done:
		if r.code != 502 || time.Since(killed) > 5*time.Second {
			t.Fatalf("request on the killed worker: %d, %v after the kill; want 502 within seconds", r.code, time.Since(killed))
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the request on the killed worker did not end")
	}
	for i := 0; i < 5; i++ {
		if code, _ := get(t, n.url+"/pid"); code != 200 {
			t.Fatalf("after the kill of a busy worker: %d", code)
		}
	}
}

// Workers SIGKILLed under load, one every 2 s: only the requests in flight
// on a killed worker fail (502, as many as its death logs), none waits long
// (the killed worker is respawned at once, no backoff), and the pool keeps
// serving throughout.
func TestWorkersKilledUnderLoad(t *testing.T) {
	s, n, _ := daemonSetup(t, "processes = 2\nthreads = 4\n")
	pidOf(t, n)
	type result struct {
		at, took time.Duration
		code     int
		err      error
		pid      int
	}
	var mu sync.Mutex
	var results []result
	begin := time.Now()
	stopLoad := underLoad(6, func() {
		start := time.Now()
		r := result{at: start.Sub(begin)}
		resp, err := client.Get(n.url + "/sleep?0.05")
		if err == nil {
			b := make([]byte, 32)
			k, _ := resp.Body.Read(b)
			resp.Body.Close()
			r.code = resp.StatusCode
			r.pid, _ = strconv.Atoi(string(b[:k]))
		}
		r.took, r.err = time.Since(start), err
		mu.Lock()
		results = append(results, r)
		mu.Unlock()
	})
	// latestPid is a worker that served a request last.
	latestPid := func() int {
		mu.Lock()
		defer mu.Unlock()
		for i := len(results) - 1; i >= 0; i-- {
			if results[i].code == 200 {
				return results[i].pid
			}
		}
		return 0
	}
	killed := map[int]bool{}
	for i := 0; i < 5; i++ {
		time.Sleep(2 * time.Second)
		pid := latestPid()
		if pid == 0 || killed[pid] {
			t.Fatalf("kill %d: no fresh worker served (pid %d)", i, pid)
		}
		killed[pid] = true
		syscall.Kill(pid, syscall.SIGKILL)
	}
	time.Sleep(time.Second)
	stopLoad()
	end := time.Since(begin)

	mu.Lock()
	defer mu.Unlock()
	failed, slowest := 0, time.Duration(0)
	served := map[time.Duration]bool{} // seconds with a success
	for _, r := range results {
		slowest = max(slowest, r.took)
		switch {
		case r.err != nil:
			t.Errorf("request at %v: %v", r.at, r.err)
		case r.code == 502:
			failed++
		case r.code != 200:
			t.Errorf("request at %v: status %d", r.at, r.code)
		default:
			served[(r.at + r.took).Truncate(time.Second)] = true
		}
	}
	if slowest > 3*time.Second {
		t.Errorf("a request took %v", slowest)
	}
	for sec := time.Duration(0); sec < end.Truncate(time.Second); sec += time.Second {
		if !served[sec] {
			t.Errorf("no request succeeded in second %v of the test", sec)
		}
	}
	// Each death is logged with the requests lost with it.
	lost := 0
	deadline := time.Now().Add(5 * time.Second)
	for {
		lost = 0
		var logged []int
		for _, line := range s.log.lines(`"worker process died"`) {
			var m struct {
				Pid      int `json:"pid"`
				InFlight int `json:"in_flight"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				t.Fatal(err)
			}
			logged = append(logged, m.Pid)
			lost += m.InFlight
		}
		if len(logged) == len(killed) || time.Now().After(deadline) {
			for _, pid := range logged {
				if !killed[pid] {
					t.Errorf("worker %d, not killed, logged as dead", pid)
				}
			}
			if len(logged) != len(killed) {
				t.Errorf("%d deaths logged, %d workers killed", len(logged), len(killed))
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if failed != lost {
		t.Errorf("%d requests got 502, the deaths logged %d in flight", failed, lost)
	}
	t.Logf("%d requests, %d lost with %d killed workers, slowest %v", len(results), failed, len(killed), slowest)
}

func waitPidFile(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(string(b)); err == nil {
				return pid
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

func TestDeadlockTimeoutReplacesStuckInterpreter(t *testing.T) {
	s, n, _ := daemonSetup(t, "threads = 2\ndeadlock-timeout = 2\n")
	before := pidOf(t, n)
	// Control: a request that sleeps with the GIL released outlives the
	// timeout, because the heartbeat keeps going.
	if code, _ := get(t, n.url+"/sleep?4"); code != 200 {
		t.Fatalf("a 4 s request with deadlock-timeout 2: %d, want 200", code)
	}
	if pid := pidOf(t, n); pid != before {
		t.Fatalf("worker %d replaced although it was not deadlocked (now %d)", before, pid)
	}
	start := time.Now()
	code, _ := get(t, n.url+"/deadlock?60")
	if code != 502 || time.Since(start) > 20*time.Second {
		t.Fatalf("request in a deadlocked interpreter: %d after %v, want 502 soon after deadlock-timeout", code, time.Since(start))
	}
	if !s.waitLog("deadlock-timeout", 5*time.Second) {
		t.Fatal("deadlock not logged")
	}
	if after := pidOf(t, n); after == before {
		t.Fatalf("still the same worker %d after the deadlock", after)
	}
}

func TestInactivityTimeoutRestartsIdleWorker(t *testing.T) {
	s, n, _ := daemonSetup(t, "inactivity-timeout = 1\n")
	before := pidOf(t, n)
	if !s.waitLog(`"reason":"inactivity-timeout"`, 10*time.Second) {
		t.Fatal("idle worker not replaced")
	}
	if after := pidOf(t, n); after == before {
		t.Fatalf("same worker %d after inactivity-timeout", after)
	}
}

func TestRequestTimeoutIs504(t *testing.T) {
	_, n, _ := daemonSetup(t, "threads = 2\nrequest-timeout = 1\n")
	before := pidOf(t, n)
	start := time.Now()
	code, _ := get(t, n.url+"/sleep?30")
	if code != 504 || time.Since(start) > 10*time.Second {
		t.Fatalf("request past request-timeout: %d after %v, want 504", code, time.Since(start))
	}
	if after := pidOf(t, n); after == before {
		t.Fatalf("the stuck worker %d was not replaced", before)
	}
}

func TestQueueTimeoutIs503(t *testing.T) {
	_, n, _ := daemonSetup(t, "threads = 1\nqueue-timeout = 1\n")
	pidOf(t, n)
	busy := make(chan int, 1)
	go func() { code, _ := get(t, n.url+"/sleep?4"); busy <- code }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	code, _ := get(t, n.url+"/pid")
	if code != 503 || time.Since(start) > 3*time.Second {
		t.Fatalf("queued request: %d after %v, want 503 after about 1 s", code, time.Since(start))
	}
	if code := <-busy; code != 200 {
		t.Fatalf("the busy request: %d", code)
	}
}

func TestSIGHUPUnderLoadLosesNothing(t *testing.T) {
	s, n, _ := daemonSetup(t, "processes = 2\nthreads = 4\n")
	pidOf(t, n)
	var mu sync.Mutex
	total, failed := 0, []string{}
	stopLoad := underLoad(4, func() {
		resp, err := client.Get(n.url + "/pid")
		mu.Lock()
		total++
		if err != nil {
			failed = append(failed, err.Error())
		} else {
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed = append(failed, resp.Status)
			}
		}
		mu.Unlock()
	})
	for i := 0; i < 10; i++ {
		time.Sleep(200 * time.Millisecond)
		s.cmd.Process.Signal(syscall.SIGHUP)
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	if len(failed) > 0 || total < 20 {
		t.Fatalf("%d of %d requests failed across 10 SIGHUPs: %v", len(failed), total, failed[:min(len(failed), 5)])
	}
	if got := len(s.log.lines("configuration reloaded")); got != 10 {
		t.Fatalf("%d reloads logged, want 10", got)
	}
}

func TestDisplayName(t *testing.T) {
	_, n, _ := daemonSetup(t, "display-name = \"%{GROUP}\"\n")
	pid := pidOf(t, n)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	if argv0 := strings.SplitN(string(b), "\x00", 2)[0]; argv0 != "(wsgi:site1)" {
		t.Fatalf("argv[0] = %q, want (wsgi:site1)", argv0)
	}
}

func TestUserGroupUmaskHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch users")
	}
	home := testDir(t)
	_, n, _ := daemonSetup(t, fmt.Sprintf("umask = \"0027\"\nhome = %q\n", home))
	code, body := get(t, n.url+"/ids")
	var ids struct {
		UID, GID, Umask int
		Groups          []int
		Cwd             string
	}
	if code != 200 || json.Unmarshal([]byte(body), &ids) != nil {
		t.Fatalf("GET /ids = %d %q", code, body)
	}
	// workerUser(): nobody / nogroup.
	if ids.UID != 65534 || ids.GID != 65534 || ids.Umask != 0o027 || ids.Cwd != home {
		t.Fatalf("worker sees uid %d gid %d umask %o cwd %q; want 65534 65534 027 %q", ids.UID, ids.GID, ids.Umask, ids.Cwd, home)
	}
	for _, g := range ids.Groups {
		if g == 0 {
			t.Fatalf("worker kept root's supplementary group: %v", ids.Groups)
		}
	}
}

func TestResourceLimits(t *testing.T) {
	_, n, _ := daemonSetup(t, "virtual-memory-limit = 1073741824\nmemory-limit = 1073741824\ncpu-time-limit = 600\ncpu-priority = 5\n")
	code, body := get(t, n.url+"/limits")
	var lim struct {
		AS, Data, CPU, Nice int64
	}
	if code != 200 || json.Unmarshal([]byte(body), &lim) != nil {
		t.Fatalf("GET /limits = %d %q", code, body)
	}
	if lim.AS != 1<<30 || lim.Data != 1<<30 || lim.CPU != 600 || lim.Nice != 5 {
		t.Fatalf("limits seen by the app: %+v", lim)
	}
	if code, _ := get(t, n.url+"/alloc?16"); code != 200 {
		t.Fatalf("16 MiB under a 1 GiB limit: %d", code)
	}
	if code, _ := get(t, n.url+"/alloc?2048"); code != 500 {
		t.Fatalf("2 GiB under a 1 GiB limit: %d, want 500 (MemoryError)", code)
	}
}

// SIGTERM waits for requests in flight only up to shutdown-timeout.
func TestSIGTERMBoundedByShutdownTimeout(t *testing.T) {
	dir := testDir(t)
	b, _ := os.ReadFile("testdata/lifecycle/app.wsgi")
	os.WriteFile(filepath.Join(dir, "app.wsgi"), b, 0o644)
	conf := fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"
[embedded]
shutdown-timeout = 1
%s
[[script-alias]]
url = "/"
path = %q
`, python, workerUser(), filepath.Join(dir, "app.wsgi"))
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, nginxFastCGI)
	pidOf(t, n)
	done := make(chan int, 1)
	go func() { code, _ := get(t, n.url+"/sleep?30"); done <- code }()
	time.Sleep(300 * time.Millisecond)
	if took := terminate(t, s); took > 8*time.Second {
		t.Fatalf("SIGTERM took %v with shutdown-timeout 1 and a 30 s request", took)
	}
	if code := <-done; code == 200 {
		t.Fatal("the 30 s request completed: it should have been cut")
	}
}

// python-home naming a virtualenv runs the workers in it.
func TestPythonHomeVirtualenv(t *testing.T) {
	dir := testDir(t)
	venv := filepath.Join(dir, "venv")
	if out, err := exec.Command(python, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		t.Fatalf("creating a venv: %v\n%s", err, out)
	}
	b, _ := os.ReadFile("testdata/lifecycle/app.wsgi")
	os.WriteFile(filepath.Join(dir, "app.wsgi"), b, 0o644)
	conf := fmt.Sprintf(`
[server]
python-home = %q
socket-mode = "0666"
[embedded]
%s
[[script-alias]]
url = "/"
path = %q
`, venv, workerUser(), filepath.Join(dir, "app.wsgi"))
	s := startServer(t, dir, conf)
	n := startNginx(t, dir, s.sock, nginxFastCGI)
	code, body := get(t, n.url+"/prefix")
	var got struct{ Prefix, Executable string }
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil {
		t.Fatalf("GET /prefix = %d %q", code, body)
	}
	if got.Prefix != venv {
		t.Fatalf("sys.prefix = %q (executable %q), want the venv %q", got.Prefix, got.Executable, venv)
	}
}
