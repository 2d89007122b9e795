package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"slices"
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
	uploadCPU         cpuRecords // CPU per 10 MiB upload
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
				head := headline(sc)
				vs := make([]float64, len(ss))
				for i, s := range ss {
					vs[i] = head(s)
				}
				lo, hi := slices.Min(vs), slices.Max(vs)
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

// headline is the number a scenario is judged by: req/s for the ones
// without payload, MiB/s else.
func headline(sc scenario) func(sample) float64 {
	if sc.body+sc.resp == 0 {
		return sample.rps
	}
	return func(s sample) float64 { return s.mibps(sc) }
}

// value is the median of a cell's headline numbers.
func (r *report) value(cs, key, sk string) (float64, bool) {
	ss := r.res[cs][key][sk]
	if len(ss) == 0 {
		return 0, false
	}
	return med(ss, headline(scenarioByKey(sk))), true
}

// vs is key's headline number over base's in a scenario, round by round.
func (r *report) vs(cs, key, base, sk string) (paired, bool) {
	return pair(r.res[cs][key][sk], r.res[cs][base][sk], sampleRound, quotient(headline(scenarioByKey(sk))))
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
	return fmtX(x)
}

// fmtX writes a ratio with two decimals, or as many more as show its side
// of a target's line (0.8, 1.0, 2.0) that two would round it onto.
func fmtX(x float64) string {
	for _, line := range []float64{0.8, 1, 2} {
		if x != line && math.Abs(x-line) < 0.005 {
			return fmt.Sprintf("%.*f×", max(3, int(math.Ceil(-math.Log10(math.Abs(x-line))))), x)
		}
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
	w("The log's cost is also measured with both bridges loaded at once, after each round's hello runs, each by its own wrk (-t 1, half the connections): ")
	w("a difference of a microsecond or two, which runs a minute apart bury under the machine's drift. ")
	w("The design floor (`../shared/floor`, built from its directory) is wsgifcgi's design cut to the bone: a Go FastCGI responder ")
	w("and one Python worker process over pipes. It runs one worker process with one thread whatever the capacity, and ")
	w("its worker ignores request bodies, so it has no upload numbers. ")
	w("The real applications (`bench/apps/real.wsgi`: a Flask view rendering a Jinja template of 20 rows, a Django view ")
	w("with an ORM query of 20 rows on sqlite, JSON) run at 2×4 in a separate start of the same servers, so hello world pays nothing for them. ")
	w("wrk -t 2 -c %d (1×1) / -c %d (2×4), %s per run, after a warm-up, and after an unmeasured second of the scenario before its first run in each round; the runs are interleaved ", o.conns[0], o.conns[1], o.duration)
	w("(all servers for one scenario, then the next scenario, then the next round, the servers in reverse order every other round) for %d rounds. ", o.rounds)
	w("Each cell is the median of the rounds; each ratio is the median of the rounds' ratios (both servers measured in the same round, a few minutes apart at most), ")
	w("so that the machine's drift from one round to the next cancels out; the targets give the range of the rounds' ratios and the ratio of the medians beside it. ")
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

	caps := []capacity{{procs: 1, threads: 1}, {procs: 2, threads: 4}}
	if len(r.cpu) > 0 {
		w("\n%s", r.cpu.markdown(helloCPUSection, r.order, r.names, caps))
	}
	if len(r.uploadCPU) > 0 {
		w("\n%s", r.uploadCPU.markdown(uploadCPUSection, r.order, r.names, caps))
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
	// vsText writes a paired ratio of headline numbers, the medians and
	// their ratio beside it.
	vsText := func(c, key, base, sk, unit string) (paired, bool, string) {
		p, ok := r.vs(c, key, base, sk)
		a, okA := r.value(c, key, sk)
		b, okB := r.value(c, base, sk)
		x, okX := ratio(a, b, okA, okB)
		prec := "%.0f"
		if unit == "MiB/s" {
			prec = "%.1f"
		}
		return p, ok, fmt.Sprintf("%s; medians "+prec+" vs "+prec+" %s, ratio %s", ratioText(p, ok), a, b, unit, fmtRatio(x, okX))
	}
	for _, c := range []string{"1×1", "2×4"} {
		p, ok, text := vsText(c, "wsgifcgi", "uwsgi", "hello", "req/s")
		stretch := "stretch missed"
		if p.mid >= 1.2 {
			stretch = "stretch met"
		}
		row("hello req/s at "+c+" ≥ 1.0× uWSGI-FastCGI (stretch: 1.2×)", ok, p.mid >= 1.0, "%s (%s)", text, stretch)
	}
	p, ok, text := vsText("1×1", "wsgifcgi", "floor", "hello", "req/s")
	row("hello req/s at 1×1 ≥ 0.8× the design floor", ok, p.mid >= 0.8, "%s", text)
	cpu := func(c, key string) []cpuSample { return r.cpu[c+"|"+key] }
	for _, c := range []string{"1×1", "2×4"} {
		ws, fs := cpu(c, "wsgifcgi"), cpu(c, "floor")
		p, ok := pair(ws, fs, cpuRound, quotient(cpuOwn))
		row("CPU per hello request at "+c+", bridge + worker, access log off ≤ 2× the floor's (its Go + Python processes)", ok, p.mid <= 2,
			"%s; medians %.0f vs %.0f µs", ratioText(p, ok), med(ws, cpuOwn), med(fs, cpuOwn))
	}
	ws, ls := cpu("1×1", atOnceKey("wsgifcgi")), cpu("1×1", atOnceKey("wsgifcgi-log"))
	p, ok = pair(ls, ws, cpuRound, cpuDiff)
	ws1, ls1 := cpu("1×1", "wsgifcgi"), cpu("1×1", "wsgifcgi-log")
	p1, _ := pair(ls1, ws1, cpuRound, cpuDiff)
	row("the access log on adds ≤ 5 µs CPU per hello request (1×1, bridge + worker)", ok, p.mid <= 5,
		"%+.1f µs (rounds %+.1f…%+.1f), the two loaded at once; medians %.1f vs %.1f µs. Run one after the other: %+.1f µs (rounds %+.1f…%+.1f)",
		p.mid, p.lo, p.hi, med(ls, cpuOwn), med(ws, cpuOwn), p1.mid, p1.lo, p1.hi)
	p99 := func(s sample) float64 { return s.P99US / 1000 }
	wp, up := r.res["1×1"]["wsgifcgi"]["hello"], r.res["1×1"]["uwsgi"]["hello"]
	p, ok = pair(wp, up, sampleRound, quotient(p99))
	row("hello p99 latency at 1×1 ≤ uWSGI's", ok, p.mid <= 1.0, "%s uWSGI's; medians %.2f vs %.2f ms", ratioText(p, ok), med(wp, p99), med(up, p99))
	for _, t := range []struct{ sk, what string }{{"1m", "1 MiB responses MiB/s"}, {"upload", "10 MiB uploads MiB/s"}} {
		for _, c := range []string{"1×1", "2×4"} {
			p, ok, text := vsText(c, "wsgifcgi", "uwsgi", t.sk, "MiB/s")
			row(t.what+" at "+c+" ≥ 1.0× uWSGI-FastCGI", ok, p.mid >= 1.0, "%s", text)
		}
	}
	for _, t := range []struct{ sk, what string }{{"flask", "Flask (Jinja template, 20 rows)"}, {"django", "Django (ORM on sqlite, 20 rows)"}} {
		p, ok, text := vsText("2×4", "wsgifcgi", "uwsgi", t.sk, "req/s")
		row(t.what+" req/s at 2×4 ≥ 1.0× uWSGI-FastCGI", ok, p.mid >= 1.0, "%s", text)
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
			p, okX := r.vs(c, key, "uwsgi", sc.key)
			x := fmtRatio(p.mid, okX)
			switch {
			case sc.body+sc.resp > 0 && ok:
				w(" | %.1f | %s", v, x)
			case sc.body+sc.resp > 0:
				w(" | n/a | n/a")
			case ok:
				w(" | %.0f | %s | %.2f | %.2f", v, x, med(ss, func(s sample) float64 { return s.P50US / 1000 }),
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
	w("Ratios are to uWSGI-FastCGI at the same capacity, the median of the rounds' ratios.\n")
}
