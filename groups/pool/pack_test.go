package pool

import (
	"os"
	"testing"
	"time"
)

// packPool is a pool of two fake processes in service, outside the arbiter:
// one thread each, 4 ahead.
func packPool() (*Pool, *proc, *proc) {
	p := &Pool{spec: Spec{Processes: 2}.withDefaults()}
	p.spec.Ahead = 4
	a := &proc{w: &fakeWorker{pid: 1}, gap: packWait}
	b := &proc{w: &fakeWorker{pid: 2}, gap: packWait}
	p.serving = []*proc{a, b}
	return p, a, b
}

// A process that ends requests one after another takes the next ones too,
// into its pipe, while the other is idle; not once it is busy, has not
// ended one for packWait, ends them too slowly for one more to end within
// packWait, or is full.
func TestQuickRequestsArePacked(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(a *proc)
		want int // pid picked
	}{
		{"quick", func(a *proc) {}, 1},
		{"busy", func(a *proc) { a.busy = true }, 2},
		{"stalled", func(a *proc) { a.lastEnd = time.Now().Add(-2 * packWait) }, 2},
		{"slow", func(a *proc) { a.gap = packWait / 3 }, 2},
		{"full", func(a *proc) { a.inflight = 1 + 4 }, 2},
	} {
		p, a, _ := packPool()
		a.inflight, a.gap, a.lastEnd = 2, 50*time.Microsecond, time.Now()
		c.edit(a)
		if got := p.pickLocked().w.Pid(); got != c.want {
			t.Errorf("%s: picked %d, want %d", c.name, got, c.want)
		}
	}
	// Nothing known of either: the least busy.
	p, a, _ := packPool()
	a.inflight = 1
	if got := p.pickLocked().w.Pid(); got != 2 {
		t.Errorf("new processes: picked %d, want the idle one", got)
	}
}

// A process proves quick by a run of quick ends; an idle spell or a busy
// CPU takes that back.
func TestEndedLearnsPace(t *testing.T) {
	defer func(f func(int) (int64, bool)) { cpuTime = f }(cpuTime)
	var ticks int64
	cpuTime = func(pid int) (int64, bool) { return ticks, true }
	pr := &proc{w: &fakeWorker{pid: 1}, gap: packWait}
	now := time.Now()
	pr.ended(now)
	if pr.packable(1, now) {
		t.Fatal("packable after one end")
	}
	for range 40 {
		now = now.Add(50 * time.Microsecond)
		pr.ended(now)
	}
	if !pr.packable(8, now) {
		t.Fatalf("not packable after 40 ends 50 µs apart (gap %v)", pr.gap)
	}
	now = now.Add(time.Second)
	pr.ended(now)
	if pr.packable(8, now) {
		t.Errorf("packable right after an idle second (gap %v)", pr.gap)
	}

	// CPU read every cpuSample: 8 ticks (80 ms) in 100 ms is busy.
	pr = &proc{w: &fakeWorker{pid: 1}, gap: 50 * time.Microsecond}
	pr.ended(now) // first reading
	ticks += 8
	now = now.Add(cpuSample)
	pr.ended(now)
	if !pr.busy || pr.packable(0, now) {
		t.Fatal("a process at 80% of a core is not busy")
	}
	ticks += 2
	now = now.Add(cpuSample)
	pr.ended(now)
	if pr.busy {
		t.Fatal("a process at 20% of a core is busy")
	}
}

// The reading of /proc/PID/stat.
func TestCPUTicks(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, ok := cpuTicks(os.Getpid()); !ok {
		t.Fatal("no CPU time for this process")
	}
	if _, ok := cpuTicks(-1); ok {
		t.Fatal("a CPU time for pid -1")
	}
}
