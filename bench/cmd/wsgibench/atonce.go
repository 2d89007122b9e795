package main

import (
	"fmt"
	"time"
)

// The access log's cost is a difference of a microsecond or two between
// runs of about fifty, and two runs a minute apart differ by up to ±15 µs as
// the machine drifts (bench/README.md). So in each round the bridge with the
// log and the one without are also loaded at once, each by its own wrk with
// half the connections: whatever the machine does meanwhile falls on both
// alike, and the difference of their CPU per request is the log's.

// atOnceKey is the cpuRecords key of a contender's runs at once with another.
func atOnceKey(key string) string { return key + "@once" }

// runAtOnce loads a and b at once with sc for d, c connections in all, and
// records their CPU per request under atOnceKey.
func runAtOnce(e *env, sc scenario, c capacity, a, b *contender, d time.Duration, round int, rep *report) error {
	cts := []*contender{a, b}
	var before [2]cpuTimes
	for i, ct := range cts {
		before[i] = measureCPU(ct, e.nginx)
	}
	type result struct {
		s   sample
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := runWrkThreads(e.dir, sc, b.url(), 1, c.conns/2, d)
		done <- result{s, err}
	}()
	sa, errA := runWrkThreads(e.dir, sc, a.url(), 1, c.conns/2, d)
	rb := <-done
	if errA != nil || rb.err != nil {
		return fmt.Errorf("at once: %v %v", errA, rb.err)
	}
	for i, s := range []sample{sa, rb.s} {
		cs := perRequest(before[i], measureCPU(cts[i], e.nginx), s.Requests)
		cs.round = round
		rep.cpu.add(c, atOnceKey(cts[i].key), cs)
	}
	logf("  round %d hello    at once      %s %.0f req/s, %s %.0f req/s", round, a.key, sa.rps(), b.key, rb.s.rps())
	return nil
}
