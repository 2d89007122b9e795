package pool

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// Packing: requests that end quickly go to the first process that ends
// them quickly, up to its threads and ahead, instead of to the least busy
// one. A worker that finds several requests in its pipe serves them in one
// wake-up, and on a small request the wake-ups of a second process cost
// more than the request's Python (bench/README.md, "Packing"). Three
// things make a process a place to pack, each of which ends it:
//   - it ends requests often: one more would end within packWait;
//   - it ended one within packWait (its threads do not all block);
//   - its CPU was under packBusy of a core when last sampled: requests
//     that keep the interpreter busy run side by side in several
//     processes, as the GIL lets one thread of a process run at a time.
const (
	packWait  = 3 * time.Millisecond
	packBusy  = 0.6
	cpuSample = 100 * time.Millisecond // how often a process's CPU is read
)

// packable reports whether pr, holding n requests, is a place to pack.
func (pr *proc) packable(n int, now time.Time) bool {
	return !pr.busy && pr.gap*time.Duration(n+1) < packWait && now.Sub(pr.lastEnd) < packWait
}

// ended notes that pr ended a request at now.
func (pr *proc) ended(now time.Time) {
	// The first end, or one after an idle spell, counts as packWait: a
	// process proves quick by ending a run of requests.
	d := min(now.Sub(pr.lastEnd), packWait)
	pr.gap += (d - pr.gap) / 8
	pr.lastEnd = now
	if now.Sub(pr.cpuAt) < cpuSample {
		return
	}
	ticks, ok := cpuTime(pr.w.Pid())
	if ok && !pr.cpuAt.IsZero() {
		used := time.Duration(ticks-pr.cpu) * (time.Second / clockTicks)
		pr.busy = float64(used) > packBusy*float64(now.Sub(pr.cpuAt))
	}
	pr.cpu, pr.cpuAt = ticks, now
}

// cpuTime reads a process's CPU time (a variable for the tests).
var cpuTime = cpuTicks

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux.
const clockTicks = 100

// cpuTicks is the CPU time (user + system, every thread) of process pid;
// false where /proc cannot tell.
func cpuTicks(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command may hold spaces and parentheses: fields follow the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	// After ')': state(0) ppid(1) ... utime(11) stime(12).
	u, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	s, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	return u + s, err1 == nil && err2 == nil
}
