package main

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func rounds(rps ...float64) []sample {
	ss := make([]sample, len(rps))
	for i, v := range rps {
		ss[i] = sample{Requests: int64(v), DurationUS: 1e6, Round: i + 1}
	}
	return ss
}

func TestPairTakesEachRoundsRatio(t *testing.T) {
	// The machine ran at half speed in rounds 2 and 3; a is 1.1× b in
	// every round.
	a := rounds(1100, 550, 550, 1100, 1100)
	b := rounds(1000, 500, 500, 1000, 1000)
	p, ok := pair(a, b, sampleRound, quotient(sample.rps))
	if !ok || p.n != 5 || p.mid < 1.0999 || p.mid > 1.1001 {
		t.Fatalf("pair = %+v, %v; want 1.1× over 5 rounds", p, ok)
	}
	if got := ratioText(p, ok); got != "1.10× (rounds 1.10–1.10)" {
		t.Errorf("ratioText = %q", got)
	}
}

func TestPairSkipsRoundsOneSideMissed(t *testing.T) {
	a := rounds(1200, 900, 3000)
	b := rounds(1000, 1000, 1000)
	// a's third run failed; b's second did: only round 1 is a pair, and
	// a's round 3 must not meet b's round 2 or 3.
	a = a[:2]
	b = []sample{b[0], b[2]}
	p, ok := pair(a, b, sampleRound, quotient(sample.rps))
	if !ok || p.n != 1 || p.mid != 1.2 {
		t.Fatalf("pair = %+v, %v; want round 1 alone, 1.2×", p, ok)
	}
	if _, ok := pair(a[1:], b[1:], sampleRound, quotient(sample.rps)); ok {
		t.Error("no common round, yet a pair")
	}
}

func TestPairMedianAndRange(t *testing.T) {
	a := rounds(900, 1000, 1300, 1050, 980)
	b := rounds(1000, 1000, 1000, 1000, 1000)
	p, ok := pair(a, b, sampleRound, quotient(sample.rps))
	if !ok || p.mid != 1.0 || p.lo != 0.9 || p.hi != 1.3 {
		t.Fatalf("pair = %+v; want median 1.0 in 0.9–1.3", p)
	}
	// A zero on b's side is no ratio, not an infinite one.
	b[2].Requests = 0
	if p, _ := pair(a, b, sampleRound, quotient(sample.rps)); p.n != 4 || p.hi != 1.05 {
		t.Errorf("pair over a zero = %+v; want its round left out", p)
	}
}

func TestTargetsUsePairedRatios(t *testing.T) {
	r := &report{res: results{"1×1": {}}, cpu: cpuRecords{}}
	// Round by round wsgifcgi is 1.10×, 0.95× and 1.11× uWSGI; the
	// medians of the rounds alone (1000 vs 1000) say 1.00×.
	r.res["1×1"]["wsgifcgi"] = map[string][]sample{"hello": rounds(1100, 1000, 500)}
	r.res["1×1"]["uwsgi"] = map[string][]sample{"hello": rounds(1000, 1050, 450)}
	var b strings.Builder
	r.targets(func(f string, args ...any) { fmt.Fprintf(&b, f, args...) })
	line := ""
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.HasPrefix(l, "| hello req/s at 1×1 ≥ 1.0×") {
			line = l
		}
	}
	if !strings.Contains(line, "1.10× (rounds 0.95–1.11)") || !strings.Contains(line, "**met**") ||
		!strings.Contains(line, "ratio 1.00×") {
		t.Errorf("hello target row: %q", line)
	}
}

func TestFmtXShowsTheSideOfALine(t *testing.T) {
	for x, want := range map[float64]string{1.14: "1.14×", 0.99895: "0.999×", 1.004: "1.004×", 1.0: "1.00×", 0.7996: "0.7996×", 2.003: "2.003×", 0.95: "0.95×"} {
		if got := fmtX(x); got != want {
			t.Errorf("fmtX(%v) = %q, want %q", x, got, want)
		}
	}
}

func TestSpreadIsTheWidestCell(t *testing.T) {
	r := &report{res: results{"1×1": {}, "2×4": {}}, names: map[string]string{"wsgifcgi": "wsgifcgi", "uwsgi": "uWSGI"}}
	r.res["1×1"]["wsgifcgi"] = map[string][]sample{"hello": rounds(1000, 1100, 900)}  // 20% of 1000
	r.res["2×4"]["uwsgi"] = map[string][]sample{"hello": rounds(500, 800, 1000, 700)} // 50% of 750
	r.res["2×4"]["wsgifcgi"] = map[string][]sample{"hello": rounds(2000)}             // one round: no spread
	sp, where := r.spread()
	if math.Abs(sp-0.5/0.75) > 1e-9 || where != "uWSGI hello at 2×4" {
		t.Fatalf("spread = %v at %q; want %v at uWSGI hello at 2×4", sp, where, 0.5/0.75)
	}
}
