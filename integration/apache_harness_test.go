package integration

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// apacheBin and apacheModules are Debian's Apache 2.4 (make deps installs
// apache2 and libapache2-mod-fcgid).
const (
	apacheBin     = "/usr/sbin/apache2"
	apacheModules = "/usr/lib/apache2/modules"
)

// apache is a running Apache in the foreground, with its own ServerRoot.
type apache struct {
	t         *testing.T
	url       string
	dir       string // ServerRoot: httpd.conf, error.log, access.log, fcgid/
	cmd       *exec.Cmd
	done      chan struct{}
	errorLog  string
	accessLog string
}

// startApache writes dir/httpd.conf (a free loopback port, the modules
// listed, mod_fcgid (when listed) with its runtime files under dir/fcgid,
// DocumentRoot docroot) followed by body, and runs Apache in the
// foreground. As root it runs its children, mod_fcgid's process manager
// and the programs that spawns as nobody:nogroup. It is stopped by PID in
// t.Cleanup.
func startApache(t *testing.T, dir, docroot, body string, modules ...string) *apache {
	t.Helper()
	if _, err := os.Stat(apacheBin); err != nil {
		t.Fatalf("Apache is not installed (make deps installs apache2): %v", err)
	}
	if _, err := os.Stat(filepath.Join(apacheModules, "mod_fcgid.so")); err != nil {
		t.Fatalf("mod_fcgid is not installed (make deps installs libapache2-mod-fcgid): %v", err)
	}
	port := freePort(t)
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, `ServerRoot %[1]q
DefaultRuntimeDir %[2]q
PidFile %[3]q
Listen 127.0.0.1:%[4]d
ServerName localhost
ErrorLog %[5]q
LogLevel info
LogFormat "%%u %%>s %%U" auth
CustomLog %[6]q auth
`, dir, filepath.Join(dir, "run"), filepath.Join(dir, "run", "httpd.pid"), port,
		filepath.Join(dir, "error.log"), filepath.Join(dir, "access.log"))
	if os.Geteuid() == 0 {
		conf.WriteString("User nobody\nGroup nogroup\n")
	}
	for _, m := range append([]string{"mpm_event"}, modules...) {
		fmt.Fprintf(&conf, "LoadModule %s_module %s/mod_%s.so\n", m, apacheModules, m)
	}
	// One child, few threads: the tests need little and the machine may be small.
	fmt.Fprintf(&conf, `StartServers 1
ServerLimit 1
ThreadsPerChild 25
MaxRequestWorkers 25
MinSpareThreads 1
MaxSpareThreads 25
<IfModule fcgid_module>
    FcgidIPCDir %[1]q
    FcgidProcessTableFile %[2]q
</IfModule>
DocumentRoot %[3]q
<Directory />
    Require all granted
</Directory>
%[4]s
`, filepath.Join(dir, "fcgid"), filepath.Join(dir, "run", "fcgid_shm"), docroot, body)
	confPath := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	out := &syncBuffer{}
	cmd := exec.Command(apacheBin, "-f", confPath, "-DFOREGROUND")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &apache{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", port), dir: dir, cmd: cmd, done: make(chan struct{}),
		errorLog: filepath.Join(dir, "error.log"), accessLog: filepath.Join(dir, "access.log")}
	go func() { cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			t.Logf("Apache error.log (wsgifcgi logs there too):\n%s\n%s", a.read(a.errorLog), out.String())
		}
	})
	waitTCP(t, fmt.Sprintf("127.0.0.1:%d", port), a.done, out)
	return a
}

// stop sends SIGTERM to the Apache parent (SIGKILL after 10 s), then makes
// sure nothing it spawned in dir survives: mod_fcgid's programs and their
// workers are killed by PID if they do.
func (a *apache) stop() {
	select {
	case <-a.done:
	default:
		a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			a.t.Errorf("Apache did not exit on SIGTERM")
			a.cmd.Process.Kill()
			<-a.done
		}
	}
	for _, pid := range a.leftovers(5 * time.Second) {
		a.t.Errorf("process %d outlived Apache: %s", pid, cmdline(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// read returns a log file's content.
func (a *apache) read(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitFile waits until the file at path contains substr.
func (a *apache) waitFile(path, substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(a.read(path), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spawned lists the running processes whose command line mentions a.dir
// (the programs mod_fcgid spawned from there, e.g. wsgifcgi serve -c
// DIR/conf.d) and all their descendants (the Python workers).
func (a *apache) spawned() []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	var roots []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == a.cmd.Process.Pid {
			continue
		}
		if ppid, ok := ppidOf(pid); ok {
			parent[pid] = ppid
		}
		if strings.Contains(cmdline(pid), a.dir+"/") && !strings.Contains(cmdline(pid), apacheBin) {
			roots = append(roots, pid)
		}
	}
	seen := map[int]bool{}
	for _, r := range roots {
		seen[r] = true
	}
	for grew := true; grew; {
		grew = false
		for pid, ppid := range parent {
			if seen[ppid] && !seen[pid] {
				seen[pid], grew = true, true
			}
		}
	}
	var out []int
	for pid := range seen {
		out = append(out, pid)
	}
	return out
}

// leftovers waits up to timeout for the spawned processes to be gone and
// returns those that are not.
func (a *apache) leftovers(timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		left := a.spawned()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// ppidOf reads the parent PID from /proc/PID/stat; zombies do not count.
func ppidOf(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || f[0] == "Z" {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// nobodyCredential is nobody:nogroup, the user Apache runs its children as
// when started as root.
func nobodyCredential(t *testing.T) *syscall.Credential {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroup("nogroup")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
}
