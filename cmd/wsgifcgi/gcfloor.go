package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// gcFloor is the least heap goal serve keeps, unless GOGC is set. The
// bridge's live heap under load is about 1 MB, so with GOGC=100 the
// runtime's 4 MiB minimum goal has it collect every 40-50 ms at 25,000
// requests a second; each cycle takes the one scheduler thread (fitProcs)
// from the requests for a while, and that is the p99 at 1×1 (GOGC=off:
// -0.3 ms). At 16 MiB a cycle comes about every 230 ms. A heap that lives
// past gcFloor/2 (10,000 idle connections) is collected as with GOGC=100,
// so the floor costs at most its 16 MiB of garbage, and only under load.
const gcFloor = 16 << 20

// runtimeHeapMinimum is the runtime's least goal at GOGC=100; it scales
// with GOGC (4 MiB × GOGC/100), which bounds the percent gcPercent gives.
const runtimeHeapMinimum = 4 << 20

// gcPercent is the GOGC that puts the next goal at max(floor, what base
// gives) for a live heap of live bytes.
func gcPercent(live, floor uint64, base int) int {
	if base < 0 || live == 0 {
		return base
	}
	p := int(floor*100/live) - 100
	// Past floor*100/runtimeHeapMinimum, the runtime's own minimum would
	// put the goal above floor.
	p = min(p, int(floor*100/runtimeHeapMinimum))
	return max(p, base)
}

// gcSentinel is collected by each cycle; its finalizer arms the next one.
// (It holds a pointer: finalizers of the tiny allocator's pointer-free
// objects may never run.)
type gcSentinel struct{ _ *byte }

// keepGCFloor has the GC's percent set after every cycle from the heap it
// found live.
func keepGCFloor() {
	if os.Getenv("GOGC") != "" {
		return
	}
	live := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var arm func()
	arm = func() {
		runtime.SetFinalizer(new(gcSentinel), func(*gcSentinel) {
			metrics.Read(live)
			if live[0].Value.Kind() == metrics.KindUint64 {
				debug.SetGCPercent(gcPercent(live[0].Value.Uint64(), gcFloor, 100))
			}
			arm()
		})
	}
	arm()
}
