package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type report struct {
	opts              options
	started, finished time.Time
	res               results
	order             []string            // contender keys in run order
	rows              map[string][]string // capacity|app: contender keys tried, in order
	names             map[string]string
	machine           string
	versions          [][2]string
	notes             []string
	mem               *memResults
	cpu               cpuRecords // CPU per hello request
}

func (r *report) cell(c capacity, key string) map[string][]sample {
	cs := c.String()
	if r.res[cs] == nil {
		r.res[cs] = map[string]map[string][]sample{}
	}
	if r.res[cs][key] == nil {
		r.res[cs][key] = map[string][]sample{}
	}
	return r.res[cs][key]
}

func (r *report) seen(ct *contender) {
	if r.names == nil {
		r.names = map[string]string{}
	}
	if _, ok := r.names[ct.key]; !ok {
		r.names[ct.key] = ct.name
		r.order = append(r.order, ct.key)
	}
}

// tried records that ct was started for app at capacity c (a row).
func (r *report) tried(c capacity, app string, ct *contender) {
	r.seen(ct)
	if r.rows == nil {
		r.rows = map[string][]string{}
	}
	k := c.String() + "|" + app
	r.rows[k] = append(r.rows[k], ct.key)
}

func (r *report) add(c capacity, ct *contender, sc scenario, s sample) {
	r.seen(ct)
	m := r.cell(c, ct.key)
	m[sc.key] = append(m[sc.key], s)
}

func (r *report) failed(c capacity, ct *contender) {
	r.seen(ct)
	msg := ct.err.Error()
	if len(msg) > 1500 {
		msg = msg[:1500] + "…"
	}
	r.notes = append(r.notes, fmt.Sprintf("%s at %s was not measured: %s", ct.name, c, msg))
}

func cmdOut(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if err != nil && s == "" {
		return "not available"
	}
	return s
}

func readFirst(path, prefix string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(line[len(prefix):])
		}
	}
	return ""
}

func (r *report) collectInfo(e *env) {
	var memKB int64
	fmt.Sscan(strings.TrimSuffix(readFirst("/proc/meminfo", "MemTotal:"), " kB"), &memKB)
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cpu := strings.TrimPrefix(readFirst("/proc/cpuinfo", "model name"), ": ")
	debian, _ := os.ReadFile("/etc/debian_version")
	r.machine = fmt.Sprintf("%d cores (nproc), %s; %.1f GiB memory; Linux %s; Debian %s",
		runtime.NumCPU(), cpu, float64(memKB)/(1<<20), strings.TrimSpace(string(kernel)), strings.TrimSpace(string(debian)))
	r.versions = [][2]string{
		{"wsgifcgi", cmdOut(e.bridge, "version")},
		{"go", runtime.Version() + " (" + cmdOut("go", "version") + ")"},
		{"python", cmdOut("/usr/bin/python3", "--version")},
		{"nginx", cmdOut("nginx", "-v")},
		{"uWSGI", cmdOut("uwsgi", "--version") + " + uwsgi-plugin-python3 " + cmdOut("dpkg-query", "-W", "-f", "${Version}", "uwsgi-plugin-python3")},
		{"Apache", cmdOut("/usr/sbin/apache2", "-v")},
		{"mod_wsgi", cmdOut("dpkg-query", "-W", "-f", "${Version}", "libapache2-mod-wsgi-py3")},
		{"gunicorn", cmdOut("gunicorn", "--version")},
		{"wrk", cmdOut("wrk", "--version")},
	}
}

// spread is the largest (max-min)/median of the headline value over the
// rounds of one cell, and which cell.
func (r *report) spread() (float64, string) {
	best, where := 0.0, ""
	for cs, byKey := range r.res {
		for key, bySc := range byKey {
			for sk, ss := range bySc {
				if len(ss) < 2 {
					continue
				}
				sc := scenarioByKey(sk)
				lo, hi := 0.0, 0.0
				for i, s := range ss {
					v := s.mibps(sc)
					if sc.body+sc.resp == 0 {
						v = s.rps()
					}
					if i == 0 || v < lo {
						lo = v
					}
					if v > hi {
						hi = v
					}
				}
				m, _ := r.value(cs, key, sk)
				if m > 0 && (hi-lo)/m > best {
					best, where = (hi-lo)/m, fmt.Sprintf("%s %s at %s", r.names[key], sc.name, cs)
				}
			}
		}
	}
	return best, where
}

// med is the median of f over the samples of one cell.
func med[T any](ss []T, f func(T) float64) float64 {
	xs := make([]float64, len(ss))
	for i, s := range ss {
		xs[i] = f(s)
	}
	return median(xs)
}

func scenarioByKey(k string) scenario {
	for _, sc := range scenarios {
		if sc.key == k {
			return sc
		}
	}
	panic(k)
}

// value is the headline number of a scenario: req/s for hello, MiB/s else.
func (r *report) value(cs, key, sk string) (float64, bool) {
	ss := r.res[cs][key][sk]
	if len(ss) == 0 {
		return 0, false
	}
	sc := scenarioByKey(sk)
	if sc.body+sc.resp == 0 {
		return med(ss, sample.rps), true
	}
	return med(ss, func(s sample) float64 { return s.mibps(sc) }), true
}

func ratio(a, b float64, okA, okB bool) (float64, bool) {
	if !okA || !okB || b == 0 {
		return 0, false
	}
	return a / b, true
}

func fmtRatio(x float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.2f×", x)
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }

func status(ok, known bool) string {
	switch {
	case !known:
		return "not measured"
	case ok:
		return "**met**"
	default:
		return "**missed**"
	}
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# wsgifcgi benchmark results\n\n")
	w("Made by `bench/run` on %s (the run took %.1f min). Regenerate with `bench/run`; ", r.started.Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Minutes())
	w("numbers from another machine or a busy one are not comparable with these.\n\n")
	if o.quick {
		w("A quick run (`make bench QUICK=1`, `bench/run -quick`): a few servers and scenarios, short runs, no memory. ")
		w("`make bench` measures everything into bench/RESULTS.md.\n\n")
	}
	w("**Machine:** %s.\n\n", r.machine)
	w("| software | version |\n|---|---|\n")
	for _, v := range r.versions {
		w("| %s | %s |\n", v[0], strings.ReplaceAll(v[1], "|", "/"))
	}
	w("\n**Method.** Every server runs on 127.0.0.1 with the same WSGI app (`bench/apps/hello.wsgi`, /usr/bin/python3) ")
	w("and the same capacity: 1 process × 1 thread, then 2 processes × 4 threads; the workers run as `nobody`. ")
	w("wsgifcgi (`[daemon.bench]`, `access-log = false`), uWSGI (`--fastcgi-socket`), the design floor and the Go `net/http/fcgi` ceiling sit behind one nginx ")
	w("(2 workers, `fastcgi_pass` to a unix socket, upstream `keepalive 32`, `fastcgi_keep_conn on`, stock `fastcgi_params`); ")
	w("gunicorn (sync worker at 1×1, gthread at 2×4) behind the same nginx with `proxy_pass` to a unix socket (upstream keep-alive); ")
	w("Apache 2.4 event MPM + mod_wsgi daemon mode (`WSGIDaemonProcess processes/threads`) is hit directly; ")
	w("the nginx ceiling answers `return 200` (and a static 1 MiB file). No access logs anywhere, but in the row ")
	w("\"wsgifcgi, access-log = true\" (hello at 1×1 only, for the log's CPU cost; the log goes to a file). ")
	w("The design floor (`../shared/floor`, built from its directory) is wsgifcgi's design cut to the bone: a Go FastCGI responder ")
	w("and one Python worker process over pipes. It runs one worker process with one thread whatever the capacity, and ")
	w("its worker ignores request bodies, so it has no upload numbers. ")
	w("The real applications (`bench/apps/real.wsgi`: a Flask view rendering a Jinja template of 20 rows, a Django view ")
	w("with an ORM query of 20 rows on sqlite, JSON) run at 2×4 in a separate start of the same servers, so hello world pays nothing for them. ")
	w("wrk -t 2 -c %d (1×1) / -c %d (2×4), %s per run, after a warm-up; the runs are interleaved ", o.conns[0], o.conns[1], o.duration)
	w("(all servers for one scenario, then the next scenario, then the next round) for %d rounds, and each cell is the median of the rounds. ", o.rounds)
	w("MiB/s counts payload (1 MiB per response, 10 MiB per upload). The load generator, nginx and the servers share the %d cores", runtime.NumCPU())
	if sp, where := r.spread(); where != "" {
		w("; the widest spread between the rounds of one cell was %.0f%% of its median (%s), so differences of a few per cent are noise", sp*100, where)
	}
	w(".\n\n")

	r.targets(w)

	// Throughput tables: one per capacity and app.
	for i, c := range []string{"1×1", "2×4"} {
		for _, app := range apps {
			r.table(w, c, o.conns[i], app)
		}
	}

	if len(r.cpu) > 0 {
		caps := []capacity{{procs: 1, threads: 1}, {procs: 2, threads: 4}}
		w("\n%s", r.cpu.markdown(r.order, r.names, caps))
	}

	if m := r.mem; m != nil {
		w("\n## Memory of wsgifcgi (1×1, behind nginx)\n\n")
		if m.err != "" {
			w("Not measured: %s\n", m.err)
		} else {
			w("- bridge RSS idle (after 20 requests, workers started): %s\n", mib(m.idleRSS))
			w("- %d FastCGI connections opened straight to the bridge's unix socket, one keep-alive request (`FCGI_KEEP_CONN`) made on each, all left open: ", m.connsWanted)
			w("%d connected, %d answered (%d with 200); bridge RSS %s (+%s)", m.connsOpen, m.connsServed, m.connsOK, mib(m.connsRSS), mib(m.connsRSS-m.idleRSS))
			if m.connsServed > 0 {
				w(", about %.1f KiB per answered connection", float64(m.connsRSS-m.idleRSS)/float64(m.connsServed))
			}
			if m.connsServed < m.connsOpen {
				w(". The other connections got no answer (not accepted, or closed by the bridge)")
			}
			if m.connsFirstFail != "" {
				w("; connect() failed %d times (first: %s)", m.connsWanted-m.connsOpen, m.connsFirstFail)
			}
			w("\n")
			w("- %d MiB upload through nginx (`/stream/`: `fastcgi_request_buffering off`, `fastcgi_buffering off`), the app reading 64 KiB at a time: ", r.opts.bigSize>>20)
			w("%.1f s (%.0f MiB/s); peak RSS (VmHWM, reset before) bridge %s, worker %s", m.upSecs, float64(r.opts.bigSize>>20)/m.upSecs, mib(m.upBridge), mib(m.upWorker))
			if m.upErr != "" {
				w("; failed: %s", m.upErr)
			}
			w("\n- %d MiB download through nginx (same location), the app yielding 256 KiB chunks: ", r.opts.bigSize>>20)
			w("%.1f s (%.0f MiB/s); peak RSS bridge %s, worker %s", m.downSecs, float64(r.opts.bigSize>>20)/m.downSecs, mib(m.downBridge), mib(m.downWorker))
			if m.downErr != "" {
				w("; failed: %s", m.downErr)
			}
			w("\n")
			if m.peakResetFailed {
				w("- resetting VmHWM (/proc/PID/clear_refs) failed: the peaks include everything since the processes started.\n")
			}
		}
	}
	if len(r.notes) > 0 {
		w("\n## Notes\n\n")
		for _, n := range r.notes {
			w("- %s\n", strings.ReplaceAll(n, "\n", "\n  "))
		}
	}
	return b.String()
}

// targets writes issue 11's targets, met or missed.
func (r *report) targets(w func(string, ...any)) {
	w("## Targets\n\n| target | measured | status |\n|---|---|---|\n")
	// row writes one target; what it measured only when it was measured.
	row := func(target string, ok, met bool, format string, args ...any) {
		m := "n/a"
		if ok {
			m = fmt.Sprintf(format, args...)
		}
		w("| %s | %s | %s |\n", target, m, status(met, ok))
	}
	hello := func(c, key string) (float64, bool) { return r.value(c, key, "hello") }
	for _, c := range []string{"1×1", "2×4"} {
		wf, okW := hello(c, "wsgifcgi")
		uw, okU := hello(c, "uwsgi")
		x, ok := ratio(wf, uw, okW, okU)
		stretch := "stretch missed"
		if x >= 1.2 {
			stretch = "stretch met"
		}
		row("hello req/s at "+c+" ≥ 1.0× uWSGI-FastCGI (stretch: 1.2×)", ok, x >= 1.0, "%s (%.0f vs %.0f req/s; %s)", fmtRatio(x, ok), wf, uw, stretch)
	}
	wf, okW := hello("1×1", "wsgifcgi")
	fl, okF := hello("1×1", "floor")
	x, ok := ratio(wf, fl, okW, okF)
	row("hello req/s at 1×1 ≥ 0.8× the design floor", ok, x >= 0.8, "%s (%.0f vs %.0f req/s)", fmtRatio(x, ok), wf, fl)
	cpu := func(c, key string) (float64, bool) { // bridge + worker, median over the rounds
		ss := r.cpu[c+"|"+key]
		return med(ss, func(s cpuSample) float64 { return s.main + s.children }), len(ss) > 0
	}
	for _, c := range []string{"1×1", "2×4"} {
		wc, okW := cpu(c, "wsgifcgi")
		fc, okF := cpu(c, "floor")
		x, ok := ratio(wc, fc, okW, okF)
		row("CPU per hello request at "+c+", bridge + worker, access log off ≤ 2× the floor's (its Go + Python processes)", ok, x <= 2,
			"%s (%.0f vs %.0f µs)", fmtRatio(x, ok), wc, fc)
	}
	wc, okW := cpu("1×1", "wsgifcgi")
	lc, okL := cpu("1×1", "wsgifcgi-log")
	row("the access log on adds ≤ 5 µs CPU per hello request (1×1, bridge + worker)", okW && okL, lc-wc <= 5,
		"%+.1f µs (%.1f vs %.1f µs)", lc-wc, lc, wc)
	p99 := func(key string) (float64, bool) {
		ss := r.res["1×1"][key]["hello"]
		return med(ss, func(s sample) float64 { return s.P99US / 1000 }), len(ss) > 0
	}
	wp, okW := p99("wsgifcgi")
	up, okU := p99("uwsgi")
	row("hello p99 latency at 1×1 ≤ uWSGI's", okW && okU, wp <= up, "%.2f vs %.2f ms", wp, up)
	for _, t := range []struct{ sk, what string }{{"1m", "1 MiB responses MiB/s"}, {"upload", "10 MiB uploads MiB/s"}} {
		for _, c := range []string{"1×1", "2×4"} {
			wf, okW := r.value(c, "wsgifcgi", t.sk)
			uw, okU := r.value(c, "uwsgi", t.sk)
			x, ok := ratio(wf, uw, okW, okU)
			row(t.what+" at "+c+" ≥ 1.0× uWSGI-FastCGI", ok, x >= 1.0, "%s (%.1f vs %.1f MiB/s)", fmtRatio(x, ok), wf, uw)
		}
	}
	for _, t := range []struct{ sk, what string }{{"flask", "Flask (Jinja template, 20 rows)"}, {"django", "Django (ORM on sqlite, 20 rows)"}} {
		wf, okW := r.value("2×4", "wsgifcgi", t.sk)
		uw, okU := r.value("2×4", "uwsgi", t.sk)
		x, ok := ratio(wf, uw, okW, okU)
		row(t.what+" req/s at 2×4 ≥ 1.0× uWSGI-FastCGI", ok, x >= 1.0, "%s (%.0f vs %.0f req/s)", fmtRatio(x, ok), wf, uw)
	}
	m := r.mem
	if m == nil || m.err != "" {
		w("| memory: bridge RSS idle < 30 MiB; 10k idle connections < +20 MiB; 1 GiB up/down < 64 MiB peak in bridge and worker | not measured | not measured |\n")
		return
	}
	w("| bridge RSS idle < 30 MiB | %s | %s |\n", mib(m.idleRSS), status(m.idleRSS < 30*1024, m.idleRSS > 0))
	full := m.connsOpen == m.connsWanted && m.connsServed == m.connsWanted
	note := ""
	if !full {
		note = fmt.Sprintf("; of %d, %d connected and %d were answered", m.connsWanted, m.connsOpen, m.connsServed)
	}
	d := m.connsRSS - m.idleRSS
	w("| bridge RSS with %d idle keep-alive connections < idle + 20 MiB | +%s (%s)%s | %s |\n", m.connsWanted, mib(d), mib(m.connsRSS), note, status(d < 20*1024 && full, m.connsRSS > 0))
	big := fmt.Sprintf("%d MiB", r.opts.bigSize>>20)
	if r.opts.bigSize == 1<<30 {
		big = "1 GiB"
	}
	for _, t := range []struct {
		what        string
		bridge, wrk int64
		err         string
	}{{big + " upload", m.upBridge, m.upWorker, m.upErr}, {big + " download", m.downBridge, m.downWorker, m.downErr}} {
		suffix := ""
		if t.err != "" {
			suffix = " (failed: " + t.err + ")"
		}
		w("| bridge peak RSS during a %s < 64 MiB | %s%s | %s |\n", t.what, mib(t.bridge), suffix, status(t.bridge < 64*1024 && t.err == "", t.bridge > 0))
		w("| worker peak RSS during a %s < 64 MiB | %s%s | %s |\n", t.what, mib(t.wrk), suffix, status(t.wrk < 64*1024 && t.err == "", t.wrk > 0))
	}
}

// table writes the results of app's scenarios at capacity c: a row per
// contender started for them, a column group per scenario measured.
func (r *report) table(w func(string, ...any), c string, conns int, app string) {
	keys := r.rows[c+"|"+app]
	var scs []scenario
	for _, sc := range scenarios {
		for _, key := range keys {
			if sc.app == app && len(r.res[c][key][sc.key]) > 0 {
				scs = append(scs, sc)
				break
			}
		}
	}
	if len(keys) == 0 {
		return
	}
	title := "hello world app"
	if app == "real" {
		title = "real applications"
	}
	w("\n## %s capacity, %s (wrk -c %d)\n\n| server", c, title, conns)
	sep := "|---"
	for _, sc := range scs {
		if sc.body+sc.resp == 0 {
			w(" | %s req/s | × uWSGI | p50 ms | p99 ms", sc.name)
			sep += "|--:|--:|--:|--:"
		} else {
			w(" | %s MiB/s | × uWSGI", sc.name)
			sep += "|--:|--:"
		}
	}
	w(" | errors |\n%s|--:|\n", sep)
	for _, key := range keys {
		cell := r.res[c][key]
		if cell == nil {
			w("| %s | not measured |\n", r.names[key])
			continue
		}
		w("| %s", r.names[key])
		var errs int64
		for _, sc := range scs {
			ss := cell[sc.key]
			v, ok := r.value(c, key, sc.key)
			u, okU := r.value(c, "uwsgi", sc.key)
			x, okX := ratio(v, u, ok, okU)
			switch {
			case sc.body+sc.resp > 0 && ok:
				w(" | %.1f | %s", v, fmtRatio(x, okX))
			case sc.body+sc.resp > 0:
				w(" | n/a | n/a")
			case ok:
				w(" | %.0f | %s | %.2f | %.2f", v, fmtRatio(x, okX), med(ss, func(s sample) float64 { return s.P50US / 1000 }),
					med(ss, func(s sample) float64 { return s.P99US / 1000 }))
			default:
				w(" | n/a | n/a | n/a | n/a")
			}
			for _, s := range ss {
				errs += s.errors()
			}
		}
		w(" | %d |\n", errs)
	}
	w("\nerrors: socket errors, timeouts and non-2xx answers over all measured runs of the row. ")
	w("Ratios are to uWSGI-FastCGI at the same capacity.\n")
}
