package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live uint64
		base int
		want int
	}{
		{1 * mib, 100, 400},  // 16 MiB would want 1500: the runtime's minimum (4 MiB × 4) caps it
		{4 * mib, 100, 300},  // 4 × 4 MiB = 16 MiB
		{8 * mib, 100, 100},  // GOGC=100 reaches the floor itself
		{20 * mib, 100, 100}, // past it: GOGC=100
		{0, 100, 100},        // nothing measured yet
		{1 * mib, -1, -1},    // GOGC=off stays off
		{4 * mib, 500, 500},  // a larger base is kept
	} {
		if got := gcPercent(c.live, gcFloor, c.base); got != c.want {
			t.Errorf("gcPercent(%d MiB, base %d) = %d, want %d", c.live/mib, c.base, got, c.want)
		}
	}
}

// After a few cycles with a small live heap, the goal is the floor.
func TestKeepGCFloor(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	keepGCFloor()
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer runs on its own goroutine
		metrics.Read(goal)
		if g := goal[0].Value.Uint64(); g >= gcFloor*9/10 {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("heap goal %d bytes after 10 s of cycles, want about %d", g, gcFloor)
		}
	}
}
