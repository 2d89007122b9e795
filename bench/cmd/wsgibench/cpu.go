package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPU accounting: where the time of a run goes. Before and after each wrk
// run the harness reads the CPU time (user + system, /proc/PID/stat) of the
// contender's main process, of its descendants (workers, daemon processes,
// and the time of children it reaped), and of nginx's tree; divided by the
// requests of the run this is CPU per request.

// cpuTimes are clock ticks.
type cpuTimes struct{ main, children, nginx int64 }

// cpuSample is CPU µs per request of one run, and the run's round.
type cpuSample struct {
	main, children, nginx float64
	round                 int
}

type procStat struct {
	ppid              int
	own, reapedByThis int64 // utime+stime; cutime+cstime
}

// readProcs reads the stat line of every process.
func readProcs() map[int]procStat {
	m := map[int]procStat{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces: fields start after the last ')'.
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		num := func(k int) int64 { n, _ := strconv.ParseInt(f[k], 10, 64); return n }
		ppid, _ := strconv.Atoi(f[1])
		// After ')': state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
		m[pid] = procStat{ppid: ppid, own: num(11) + num(12), reapedByThis: num(13) + num(14)}
	}
	return m
}

// tree returns root's own time and that of everything below it.
func tree(ps map[int]procStat, root int) (own, below int64) {
	kids := map[int][]int{}
	for pid, p := range ps {
		kids[p.ppid] = append(kids[p.ppid], pid)
	}
	r, ok := ps[root]
	if !ok {
		return 0, 0
	}
	own, below = r.own, r.reapedByThis
	stack := append([]int(nil), kids[root]...)
	for len(stack) > 0 {
		pid := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := ps[pid]
		below += p.own + p.reapedByThis
		stack = append(stack, kids[pid]...)
	}
	return own, below
}

// measureCPU reads the contender's and nginx's CPU times now.
func measureCPU(ct *contender, nginx *proc) cpuTimes {
	ps := readProcs()
	var t cpuTimes
	for _, p := range ct.procs {
		own, below := tree(ps, p.pid())
		t.main += own
		t.children += below
	}
	if nginx != nil && ct.nginx != "" {
		own, below := tree(ps, nginx.pid())
		t.nginx = own + below
	}
	return t
}

// perRequest turns the ticks between two readings into µs per request.
func perRequest(before, after cpuTimes, requests int64) cpuSample {
	if requests <= 0 {
		return cpuSample{}
	}
	tick := 1e6 / float64(clockTicks)
	us := func(d int64) float64 { return float64(d) * tick / float64(requests) }
	return cpuSample{main: us(after.main - before.main), children: us(after.children - before.children),
		nginx: us(after.nginx - before.nginx)}
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// cpuRecords keeps the CPU samples of one scenario's runs.
type cpuRecords map[string][]cpuSample // capacity|contender

func (r cpuRecords) add(c capacity, key string, s cpuSample) {
	k := c.String() + "|" + key
	r[k] = append(r[k], s)
}

// median of each field separately.
func (r cpuRecords) median(c capacity, key string) (cpuSample, bool) {
	ss := r[c.String()+"|"+key]
	if len(ss) == 0 {
		return cpuSample{}, false
	}
	return cpuSample{
		main:     med(ss, func(s cpuSample) float64 { return s.main }),
		children: med(ss, func(s cpuSample) float64 { return s.children }),
		nginx:    med(ss, func(s cpuSample) float64 { return s.nginx }),
	}, true
}

// cpuSection is how one scenario's CPU samples are reported.
type cpuSection struct {
	title, intro, unit string
	scale              float64 // from µs per request to unit
	num                string  // the format of a number
}

var (
	helloCPUSection = cpuSection{
		title: "Where the time goes (hello)",
		intro: "CPU time per hello request, read from `/proc/PID/stat` before and after each run (median of the rounds): " +
			"the contender's main process (wsgifcgi: the Go bridge; uWSGI: the master; Apache: the parent; gunicorn: the arbiter), " +
			"everything below it (wsgifcgi, uWSGI, gunicorn: the Python workers; Apache: its MPM children and the mod_wsgi daemons), " +
			"and nginx's processes where the contender sits behind nginx. wrk's own time is not counted. " +
			"With 2 cores the machine can spend at most 2,000,000 µs per second in all, so the sum bounds the request rate. " +
			"Profiles taken while tuning (bench/README.md) say what the bridge's and the worker's time is made of.",
		unit: "µs/req", scale: 1, num: "%.0f",
	}
	uploadCPUSection = cpuSection{
		title: "Where the time goes (10 MiB uploads)",
		intro: "CPU time per 10 MiB upload, read as for hello (median of the rounds). nginx receives each body from wrk, " +
			"writes it to a temporary file and sends it on from there, 8 KiB at a time: most of the machine's time per upload " +
			"is nginx's, whoever sits behind it.",
		unit: "ms/upload", scale: 1e-3, num: "%.1f",
	}
)

// markdown renders the samples as section sec: one table per capacity.
func (r cpuRecords) markdown(sec cpuSection, order []string, names map[string]string, caps []capacity) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## %s\n\n%s\n\n", sec.title, sec.intro)
	f, unit, scale := sec.num, sec.unit, sec.scale
	for _, c := range caps {
		w("| %s | main process %s | below it %s | nginx %s | total %s |\n|---|--:|--:|--:|--:|\n", c, unit, unit, unit, unit)
		for _, key := range order {
			s, ok := r.median(c, key)
			if !ok {
				continue
			}
			ng := "n/a"
			if s.nginx > 0 {
				ng = fmt.Sprintf(f, s.nginx*scale)
			}
			w("| %s | "+f+" | "+f+" | %s | "+f+" |\n", names[key], s.main*scale, s.children*scale, ng, (s.main+s.children+s.nginx)*scale)
		}
		w("\n")
	}
	return b.String()
}
