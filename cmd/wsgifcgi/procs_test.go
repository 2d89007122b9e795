package main

import (
	"runtime"
	"testing"
)

// serve gives the bridge a quarter of the CPUs unless GOMAXPROCS is set.
func TestFitProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	runtime.GOMAXPROCS(runtime.NumCPU())
	fitProcs()
	if got, want := runtime.GOMAXPROCS(0), max(1, runtime.NumCPU()/4); got != want {
		t.Errorf("GOMAXPROCS unset: %d, want %d", got, want)
	}
	t.Setenv("GOMAXPROCS", "3")
	runtime.GOMAXPROCS(3)
	fitProcs()
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("GOMAXPROCS=3: %d", got)
	}
}
