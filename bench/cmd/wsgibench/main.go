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
	"os/exec"
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
	floor             string // ../shared/floor
	duration          time.Duration
	rounds            int
	conns             []int
	memConns          int
	bigSize           int64
	only              map[string]bool // contenders ("" = all)
	scenarios         map[string]bool // scenarios (nil = all)
	keep              bool
	skipMem           bool
	quick             bool
}

// quickDefaults are what -quick sets, unless given on the command line:
// hello and the real apps for wsgifcgi (and hello at 1×1 with its access
// log), uWSGI and the floor, in under 3 minutes, into a file of its own.
var quickDefaults = map[string]string{
	"rounds": "3", "duration": "2s", "skip-mem": "true", "out": "bench/QUICK.md",
	"only": "wsgifcgi,wsgifcgi-log,uwsgi,floor", "scenarios": "hello,flask,django",
}

func keySet(list string) map[string]bool {
	if list == "" {
		return nil
	}
	m := map[string]bool{}
	for _, k := range strings.Split(list, ",") {
		m[strings.TrimSpace(k)] = true
	}
	return m
}

// results[capacity][contender][scenario] = samples
type results map[string]map[string]map[string][]sample

func runMain() int {
	var o options
	var conns, only, scs string
	var bigMiB int64
	flag.StringVar(&o.repo, "repo", ".", "the wsgifcgi checkout")
	flag.StringVar(&o.bridge, "bin", "bin/wsgifcgi", "the wsgifcgi binary")
	flag.StringVar(&o.out, "out", "bench/RESULTS.md", "where to write the report")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "length of one wrk run")
	flag.IntVar(&o.rounds, "rounds", 5, "interleaved rounds (medians, and medians of the rounds' ratios, are reported)")
	flag.StringVar(&conns, "conns", "16,32", "wrk connections for the 1×1 and 2×4 capacities")
	flag.IntVar(&o.memConns, "mem-conns", 10000, "idle FastCGI connections for the memory test")
	flag.Int64Var(&bigMiB, "big-mib", 1024, "size of the big upload/download in MiB")
	flag.StringVar(&only, "only", "", "comma-separated contenders to run (wsgifcgi,wsgifcgi-log,uwsgi,modwsgi,gunicorn,floor,gofcgi,nginx)")
	flag.StringVar(&scs, "scenarios", "", "comma-separated scenarios to run (hello,1m,upload,flask,django)")
	flag.StringVar(&o.floor, "floor", "", "the design floor's directory (../shared/floor; \"\" = no floor row)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs and logs)")
	flag.BoolVar(&o.skipMem, "skip-mem", false, "skip the memory measurements")
	flag.BoolVar(&o.quick, "quick", false, "hello and real-app rows of wsgifcgi, uWSGI and the floor only, no memory, into bench/QUICK.md")
	flag.Parse()
	if o.quick {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range quickDefaults {
			if !set[name] {
				flag.Set(name, v)
			}
		}
	}
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
	o.only, o.scenarios = keySet(only), keySet(scs)

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

	rep := &report{opts: o, started: time.Now(), res: results{}, cpu: cpuRecords{}, uploadCPU: cpuRecords{}}
	rep.collectInfo(e)
	// hello at 1×1 and 2×4, then the real apps at 2×4.
	c11 := capacity{procs: 1, threads: 1, conns: o.conns[0]}
	c24 := capacity{procs: 2, threads: 4, conns: o.conns[1]}
	for _, run := range []struct {
		c   capacity
		app string
	}{{c11, "hello"}, {c24, "hello"}, {c24, "real"}} {
		if !isStopping() {
			runCapacity(e, &o, run.c, run.app, rep)
		}
	}
	e.app = filepath.Join(e.dir, "app", "hello.wsgi")
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
	if err := os.CopyFS(appDir, os.DirFS(filepath.Join(o.repo, "bench", "apps"))); err != nil {
		return nil, err
	}
	for _, n := range apps { // gunicorn imports APP.py
		src, err := os.ReadFile(filepath.Join(appDir, n+".wsgi"))
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(appDir, n+".py"), src, 0o644); err != nil {
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
	// The Django app's sqlite database, readable and writable by the workers.
	mkdb := exec.Command("/usr/bin/python3", "djangoapp/mkdb.py")
	mkdb.Dir = appDir
	if out, err := mkdb.CombinedOutput(); err != nil {
		logf("the Django database was not made (the Django rows will fail): %v\n%s", err, out)
	} else if err := chownTo(filepath.Join(appDir, "djangoapp", "bench.sqlite3"), e.user, e.group); err != nil {
		return nil, err
	}
	if o.floor != "" && (o.only == nil || o.only["floor"]) {
		if e.floorErr = buildFloor(e, o.floor); e.floorErr != nil {
			logf("the design floor was not built: %v", e.floorErr)
		}
	} else {
		e.floorErr = fmt.Errorf("no -floor directory")
	}
	return e, nil
}

// runCapacity starts every contender that runs a scenario of app at
// capacity c, runs the interleaved rounds, and stops them.
func runCapacity(e *env, o *options, c capacity, app string, rep *report) {
	var scs []scenario
	for _, sc := range scenarios {
		if sc.app == app && (o.scenarios == nil || o.scenarios[sc.key]) {
			scs = append(scs, sc)
		}
	}
	e.app = filepath.Join(e.dir, "app", app+".wsgi")
	var cts []*contender
	for _, ct := range newContenders(e) {
		if ct.skip == nil {
			ct.skip = map[string]bool{}
		}
		if (o.only == nil || o.only[ct.key]) && (!ct.only11 || c.procs*c.threads == 1) && ct.runsAny(scs) {
			ct.port = freePort()
			cts = append(cts, ct)
		}
	}
	if len(cts) == 0 {
		return
	}
	logf("%s at %s (wrk -t 2 -c %d, %s per run, %d rounds)", app, c, c.conns, o.duration, o.rounds)
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
		rep.tried(c, app, ct)
		if ct.err == nil {
			ct.err = check(ct, scs, c, rep)
		}
		if ct.err != nil {
			logf("  %s: %v", ct.key, ct.err)
			rep.failed(c, ct)
			continue
		}
		live = append(live, ct)
	}
	for _, ct := range live { // warm up: imports, lazy worker starts, caches
		for _, sc := range scs {
			if !ct.runs(sc) {
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
		for _, sc := range scs {
			settled := false
			for i := range live {
				// Every other round in reverse, so that no server always
				// runs right after the same neighbour.
				ct := live[i]
				if r%2 == 0 {
					ct = live[len(live)-1-i]
				}
				if !ct.runs(sc) {
					continue
				}
				if !settled {
					// The run before was another scenario (10 MiB uploads
					// end a round): an unmeasured second of this one lets
					// the machine settle, so that the first server measured
					// does not pay for it (its p99 did, round after round).
					settled = true
					if _, err := runWrk(e.dir, sc, ct.url(), c.conns, time.Second); err != nil {
						logf("  round %d %s: settling on %s: %v", r, sc.key, ct.key, err)
					}
				}
				before := measureCPU(ct, e.nginx)
				s, err := runWrk(e.dir, sc, ct.url(), c.conns, o.duration)
				if err != nil {
					logf("  round %d %s %s: %v", r, sc.key, ct.key, err)
					continue
				}
				s.Round = r
				cs := perRequest(before, measureCPU(ct, e.nginx), s.Requests)
				cs.round = r
				switch sc.key {
				case "hello":
					rep.cpu.add(c, ct.key, cs)
				case "upload":
					rep.uploadCPU.add(c, ct.key, cs)
				}
				rep.add(c, ct, sc, s)
				extra := ""
				if sc.body+sc.resp > 0 {
					extra = fmt.Sprintf(" %8.1f MiB/s", s.mibps(sc))
				}
				if n := s.errors(); n > 0 {
					extra += fmt.Sprintf("  errors %d", n)
				}
				logf("  round %d %-7s %-12s %9.0f req/s  p50 %6.2f ms  p99 %7.2f ms%s  CPU µs/req %.0f+%.0f, nginx %.0f",
					r, sc.key, ct.key, s.rps(), s.P50US/1000, s.P99US/1000, extra, cs.main, cs.children, cs.nginx)
			}
			if a, b := liveKey(live, "wsgifcgi"), liveKey(live, "wsgifcgi-log"); sc.key == "hello" && a != nil && b != nil {
				if err := runAtOnce(e, sc, c, a, b, o.duration, r, rep); err != nil {
					logf("  round %d: %v", r, err)
				}
			}
		}
	}
}

// liveKey is the contender of cts with key, or nil.
func liveKey(cts []*contender, key string) *contender {
	for _, ct := range cts {
		if ct.key == key {
			return ct
		}
	}
	return nil
}

func (ct *contender) runs(sc scenario) bool { return !ct.skip[sc.key] }

func (ct *contender) runsAny(scs []scenario) bool {
	for _, sc := range scs {
		if ct.runs(sc) {
			return true
		}
	}
	return false
}

// check makes sure a contender serves the app before it is measured: it
// fails if the first scenario's answer is wrong; a later scenario with a
// wrong answer is skipped for it, with a note.
func check(ct *contender, scs []scenario, c capacity, rep *report) error {
	first := true
	for _, sc := range scs {
		if !ct.runs(sc) {
			continue
		}
		err := checkScenario(ct, sc, first)
		if err != nil && first {
			return err
		}
		if err != nil {
			logf("  %s: %s skipped: %v", ct.key, sc.key, err)
			rep.notes = append(rep.notes, fmt.Sprintf("%s at %s: %s was skipped, its answer was wrong: %v", ct.name, c, sc.name, err))
			ct.skip[sc.key] = true
		}
		first = false
	}
	return nil
}

// checkScenario fetches sc's path once (for a while if wait, as the server
// may still be starting) and checks the answer.
func checkScenario(ct *contender, sc scenario, wait bool) error {
	method, body := "GET", ""
	if sc.key == "upload" {
		method, body = "POST", strings.Repeat("u", 100<<10)
	}
	ok := func(code int, head string, n int64) bool {
		if code != 200 {
			return false
		}
		switch sc.key {
		case "hello":
			return head == "Hello, World!"
		case "1m":
			return n == 1<<20
		case "upload":
			return head == strconv.Itoa(len(body))
		case "flask":
			return strings.Count(head, `<tr class="row">`) == 20
		case "django":
			return strings.Count(head, `"name": "item `) == 20
		}
		return true
	}
	var code int
	var head string
	var n int64
	var err error
	for i := 0; i < 50; i++ {
		code, head, n, err = fetch(method, ct.url()+sc.path, body)
		if (err == nil && ok(code, head, n)) || !wait {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil || !ok(code, head, n) {
		if len(head) > 300 {
			head = head[:300] + "…"
		}
		return fmt.Errorf("%s %s = %d, %d bytes %q %v%s", method, sc.path, code, n, head, err, procTails(ct))
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
