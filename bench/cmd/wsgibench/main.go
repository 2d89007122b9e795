// Command wsgibench is the wsgifcgi benchmark harness (run it through
// bench/run). It starts wsgifcgi, uWSGI, Apache mod_wsgi, gunicorn and two
// ceilings on loopback with the same WSGI app and capacity, drives them with
// wrk in interleaved rounds, measures the bridge's memory, and writes a
// markdown report. `wsgibench fcgi-ceiling` is the Go FastCGI ceiling.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "fcgi-ceiling" {
		if err := ceilingMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "fcgi-ceiling:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "run" {
		os.Args = append(os.Args[:1], os.Args[2:]...)
	}
	os.Exit(runMain())
}

type options struct {
	repo, bridge, out string
	duration          time.Duration
	rounds            int
	conns             []int
	memConns          int
	bigSize           int64
	only              map[string]bool
	keep              bool
	skipMem           bool
}

// results[capacity][contender][scenario] = samples
type results map[string]map[string]map[string][]sample

func runMain() int {
	var o options
	var conns, only string
	var bigMiB int64
	flag.StringVar(&o.repo, "repo", ".", "the wsgifcgi checkout")
	flag.StringVar(&o.bridge, "bin", "bin/wsgifcgi", "the wsgifcgi binary")
	flag.StringVar(&o.out, "out", "bench/RESULTS.md", "where to write the report")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of one wrk run")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds (medians are reported)")
	flag.StringVar(&conns, "conns", "16,32", "wrk connections for the 1×1 and 2×4 capacities")
	flag.IntVar(&o.memConns, "mem-conns", 10000, "idle FastCGI connections for the memory test")
	flag.Int64Var(&bigMiB, "big-mib", 1024, "size of the big upload/download in MiB")
	flag.StringVar(&only, "only", "", "comma-separated contenders to run (wsgifcgi,uwsgi,modwsgi,gunicorn,gofcgi,nginx)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs and logs)")
	flag.BoolVar(&o.skipMem, "skip-mem", false, "skip the memory measurements")
	flag.Parse()
	o.bigSize = bigMiB << 20
	for _, s := range strings.Split(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintln(os.Stderr, "bad -conns:", conns)
			return 2
		}
		o.conns = append(o.conns, n)
	}
	for len(o.conns) < 2 {
		o.conns = append(o.conns, o.conns[len(o.conns)-1])
	}
	if only != "" {
		o.only = map[string]bool{}
		for _, k := range strings.Split(only, ",") {
			o.only[strings.TrimSpace(k)] = true
		}
	}

	e, err := setup(&o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		return 1
	}
	cleanup := func() {
		stopAll()
		if !o.keep {
			os.RemoveAll(e.dir)
		} else {
			fmt.Fprintln(os.Stderr, "kept", e.dir)
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		fmt.Fprintln(os.Stderr, "\nwsgibench: got", s, "- stopping everything it started")
		beginStopping()
		cleanup()
		os.Exit(130)
	}()
	defer cleanup()
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintln(os.Stderr, "wsgibench: panic:", r)
			cleanup()
			os.Exit(1)
		}
	}()

	rep := &report{opts: o, started: time.Now(), res: results{}, cpu: cpuRecords{}}
	rep.collectInfo(e)
	caps := []capacity{{procs: 1, threads: 1, conns: o.conns[0]}, {procs: 2, threads: 4, conns: o.conns[1]}}
	for _, c := range caps {
		if !isStopping() {
			runCapacity(e, &o, c, rep)
		}
	}
	if !o.skipMem && !isStopping() {
		logf("memory: wsgifcgi 1×1, idle / %d idle connections / %d MiB up and down", o.memConns, o.bigSize>>20)
		m := measureMemory(e, o.memConns, o.bigSize)
		rep.mem = &m
	}
	if isStopping() {
		select {} // the signal handler stops everything and exits
	}
	rep.finished = time.Now()
	text := rep.markdown()
	fmt.Println(text)
	out := o.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(o.repo, out)
	}
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "write report:", err)
		return 1
	}
	logf("wrote %s", out)
	return 0
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// setup makes the temp dir with the app, readable by the workers' user.
func setup(o *options) (*env, error) {
	abs, err := filepath.Abs(o.repo)
	if err != nil {
		return nil, err
	}
	o.repo = abs
	if !filepath.IsAbs(o.bridge) {
		o.bridge = filepath.Join(o.repo, o.bridge)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wsgibench-")
	if err != nil {
		return nil, err
	}
	os.Chmod(dir, 0o755)
	appDir := filepath.Join(dir, "app")
	os.MkdirAll(appDir, 0o755)
	src, err := os.ReadFile(filepath.Join(o.repo, "bench", "apps", "hello.wsgi"))
	if err != nil {
		return nil, err
	}
	for _, n := range []string{"hello.wsgi", "hello.py"} { // gunicorn imports hello.py
		if err := os.WriteFile(filepath.Join(appDir, n), src, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(appDir, "1m.bin"), []byte(strings.Repeat("x", 1<<20)), 0o644); err != nil {
		return nil, err
	}
	if err := writeScripts(dir); err != nil {
		return nil, err
	}
	e := &env{dir: dir, repo: o.repo, bridge: o.bridge, self: self, app: filepath.Join(appDir, "hello.wsgi"),
		user: "nobody", group: "nogroup"}
	if os.Geteuid() != 0 {
		e.user, e.group = "", "" // ignored when not root
	}
	return e, nil
}

// runCapacity starts every contender at capacity c, runs the interleaved
// rounds, and stops them.
func runCapacity(e *env, o *options, c capacity, rep *report) {
	logf("capacity %s (wrk -t 2 -c %d, %s per run, %d rounds)", c, c.conns, o.duration, o.rounds)
	all := newContenders(e)
	var cts []*contender
	for _, ct := range all {
		if o.only == nil || o.only[ct.key] {
			ct.port = freePort()
			cts = append(cts, ct)
		}
	}
	defer func() {
		for i := len(cts) - 1; i >= 0; i-- {
			for _, p := range cts[i].procs {
				p.stop()
			}
		}
		if e.nginx != nil {
			e.nginx.stop()
			e.nginx = nil
		}
	}()
	for _, ct := range cts {
		if err := ct.start(e, c, ct); err != nil {
			ct.err = err
			logf("  %s: %v", ct.key, err)
		}
	}
	ng, err := startNginx(e, "nginx", cts)
	e.nginx = ng
	if err != nil {
		logf("  nginx: %v", err)
		for _, ct := range cts {
			if ct.nginx != "" && ct.err == nil {
				ct.err = fmt.Errorf("nginx: %v", err)
			}
		}
	}
	var live []*contender
	for _, ct := range cts {
		if ct.err == nil {
			if err := check(ct); err != nil {
				ct.err = err
				logf("  %s: %v", ct.key, err)
			}
		}
		if ct.err != nil {
			rep.failed(c, ct)
			continue
		}
		live = append(live, ct)
	}
	for _, ct := range live { // warm up: imports, lazy worker starts, caches
		for _, sc := range scenarios {
			if sc.key == ct.skip {
				continue
			}
			d := time.Second
			if sc.key == "hello" {
				d = 2 * time.Second
			}
			if _, err := runWrk(e.dir, sc, ct.url(), c.conns, d); err != nil {
				logf("  warm-up %s %s: %v", ct.key, sc.key, err)
			}
		}
	}
	for r := 1; r <= o.rounds; r++ {
		for _, sc := range scenarios {
			for _, ct := range live {
				if sc.key == ct.skip {
					continue
				}
				before := measureCPU(ct, e.nginx)
				s, err := runWrk(e.dir, sc, ct.url(), c.conns, o.duration)
				if err != nil {
					logf("  round %d %s %s: %v", r, sc.key, ct.key, err)
					continue
				}
				if sc.key == "hello" {
					rep.cpu.add(c, ct.key, perRequest(before, measureCPU(ct, e.nginx), s.Requests))
				}
				rep.add(c, ct, sc, s)
				extra := ""
				if sc.body+sc.resp > 0 {
					extra = fmt.Sprintf(" %8.1f MiB/s", s.mibps(sc))
				}
				if n := s.errors(); n > 0 {
					extra += fmt.Sprintf("  errors %d", n)
				}
				logf("  round %d %-7s %-9s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms%s", r, sc.key, ct.key, s.rps(), s.P50US/1000, s.P99US/1000, extra)
			}
		}
	}
}

// check makes sure a contender serves the app before it is measured.
func check(ct *contender) error {
	var code int
	var body string
	var err error
	for i := 0; i < 50; i++ {
		code, body, err = getBody(ct.url() + "/")
		if err == nil && code == 200 && body == "Hello, World!" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || code != 200 || body != "Hello, World!" {
		return fmt.Errorf("GET / = %d %q %v%s", code, body, err, procTails(ct))
	}
	if code, body, err = getBody(ct.url() + "/1m"); err != nil || code != 200 {
		return fmt.Errorf("GET /1m = %d %v%s", code, err, procTails(ct))
	}
	return nil
}

func procTails(ct *contender) string {
	var b strings.Builder
	for _, p := range ct.procs {
		fmt.Fprintf(&b, "\n--- %s ---\n%s", p.name, p.tail(10))
	}
	return b.String()
}
