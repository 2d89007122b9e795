package main

import (
	"fmt"
	"slices"
)

// Two servers are compared round by round. A round measures every server
// within a few minutes, while the machine's speed drifts by tens of per cent
// from one round to the next (its other tenants): one round's ratio cancels
// that drift, and the median of the rounds' ratios passes over an odd
// round. The median of one server's rounds over the median of the other's
// would set numbers from different rounds against each other.

// paired is a comparison over the rounds both servers ran.
type paired struct {
	mid, lo, hi float64 // the median, smallest and largest of the rounds' values
	n           int     // rounds compared
}

// pair compares a with b in each round both have: f gives one round's
// value (a ratio, a difference), false when it has none.
func pair[T any](a, b []T, round func(T) int, f func(x, y T) (float64, bool)) (paired, bool) {
	byRound := make(map[int]T, len(b))
	for _, y := range b {
		byRound[round(y)] = y
	}
	var vs []float64
	for _, x := range a {
		if y, ok := byRound[round(x)]; ok {
			if v, ok := f(x, y); ok {
				vs = append(vs, v)
			}
		}
	}
	if len(vs) == 0 {
		return paired{}, false
	}
	return paired{mid: median(vs), lo: slices.Min(vs), hi: slices.Max(vs), n: len(vs)}, true
}

// quotient is a pair's value as x over y.
func quotient[T any](v func(T) float64) func(x, y T) (float64, bool) {
	return func(x, y T) (float64, bool) {
		if d := v(y); d > 0 {
			return v(x) / d, true
		}
		return 0, false
	}
}

func sampleRound(s sample) int   { return s.Round }
func cpuRound(s cpuSample) int   { return s.round }
func cpuOwn(s cpuSample) float64 { return s.main + s.children }

// cpuDiff is a pair's value as x's CPU per request less y's.
func cpuDiff(x, y cpuSample) (float64, bool) { return cpuOwn(x) - cpuOwn(y), true }

// ratioText writes a paired ratio with the range of its rounds.
func ratioText(p paired, ok bool) string {
	if !ok {
		return "n/a"
	}
	if p.n == 1 {
		return fmtX(p.mid)
	}
	return fmt.Sprintf("%s (rounds %.2f–%.2f)", fmtX(p.mid), p.lo, p.hi)
}
