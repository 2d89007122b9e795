package pyworker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// vmRSS is the resident set of a process in KiB.
func vmRSS(t *testing.T, pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func TestSlowClientDoesNotStallOthers(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 2})
	const mib = 100
	slow := newSink()
	slow.hash = sha256.New()
	slow.delay = 2 * time.Millisecond // 1600 writes: over 3 s
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := w.Serve(context.Background(), &Call{Environ: env(t, "big.wsgi", "QUERY_STRING", itoa(mib)), Out: slow})
		done <- outcome{res, err}
	}()
	<-slow.first
	baseline := vmRSS(t, w.Pid())

	start := time.Now()
	out, _, err, _ := serve(t, w, env(t, "big.wsgi", "QUERY_STRING", "small"), nil)
	if err != nil || out.String() != "small" {
		t.Fatalf("second request: %q %v", out.String(), err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second request took %v behind a slow client", d)
	}
	select {
	case <-done:
		t.Fatal("the slow response ended first: nothing was proven")
	default:
	}

	peak := baseline
	for {
		select {
		case o := <-done:
			if o.err != nil || o.res.BytesOut != mib<<20 {
				t.Fatalf("big response: %v, %d bytes", o.err, o.res.BytesOut)
			}
			want := sha256.Sum256(bytes.Repeat([]byte{'x'}, mib<<20))
			if !bytes.Equal(slow.hash.Sum(nil), want[:]) {
				t.Fatal("big response corrupted")
			}
			if peak-baseline > 20<<10 {
				t.Fatalf("worker RSS grew from %d KiB to %d KiB while streaming", baseline, peak)
			}
			t.Logf("RSS baseline %d KiB, peak %d KiB", baseline, peak)
			return
		case <-time.After(50 * time.Millisecond):
			peak = max(peak, vmRSS(t, w.Pid()))
		}
	}
}

func TestStreamingIsNotBuffered(t *testing.T) {
	w, _ := startWorker(t, Config{})
	out, _, err, _ := serve(t, w, env(t, "slow.wsgi"), nil)
	if err != nil || out.String() != "firstsecond" || len(out.times) != 2 {
		t.Fatalf("%q %v", out.String(), err)
	}
	// The app sleeps 1 s between its blocks: the first one must have reached
	// the Sink before that sleep ended, not with the second.
	if gap := out.times[1].Sub(out.times[0]); gap < 800*time.Millisecond {
		t.Fatalf("first block held back: it came %v before the second", gap)
	}
}

// One thread runs requests inline on the reader thread (it reads frames
// itself while the application runs); more use a reader and request threads.
func TestAbortMidStream(t *testing.T) {
	for _, threads := range []int{1, 2} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) { testAbortMidStream(t, threads) })
	}
}

func testAbortMidStream(t *testing.T, threads int) {
	w, _ := startWorker(t, Config{Threads: threads})
	record := filepath.Join(t.TempDir(), "record")
	ctx, cancel := context.WithCancel(context.Background())
	out := newSink()
	out.hash = sha256.New()
	go func() { <-out.first; cancel() }()
	res, err := w.Serve(ctx, &Call{Environ: env(t, "forever.wsgi", "RECORD_FILE", record), Out: out})
	if !errors.Is(err, ErrAborted) || !res.HeadersSent {
		t.Fatalf("got %v %+v", err, res)
	}
	if got, _ := os.ReadFile(record); string(got) != "closed" {
		t.Fatalf("close() of the iterable did not run: %q", got)
	}
	if w.InFlight() != 0 {
		t.Fatalf("InFlight %d", w.InFlight())
	}
	// A Sink that fails aborts the same way.
	os.Remove(record)
	bad := newSink()
	bad.failWith = io.ErrClosedPipe
	_, err = w.Serve(context.Background(), &Call{Environ: env(t, "forever.wsgi", "RECORD_FILE", record), Out: bad})
	if !errors.Is(err, ErrAborted) || !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("sink error: %v", err)
	}
	if got, _ := os.ReadFile(record); string(got) != "closed" {
		t.Fatalf("close() after a sink error: %q", got)
	}
	// The worker still serves.
	if out, _, err, _ := serve(t, w, env(t, "hello.wsgi"), nil); err != nil || out.String() != "Hello World!" {
		t.Fatalf("after aborts: %q %v", out.String(), err)
	}
}

// A response that never waits for credit still notices the abort at its
// next write, also when the request runs inline.
func TestAbortTrickle(t *testing.T) {
	for _, threads := range []int{1, 2} {
		t.Run(fmt.Sprintf("threads=%d", threads), func(t *testing.T) {
			w, _ := startWorker(t, Config{Threads: threads})
			record := filepath.Join(t.TempDir(), "record")
			ctx, cancel := context.WithCancel(context.Background())
			out := newSink()
			go func() { <-out.first; cancel() }()
			res, err := w.Serve(ctx, &Call{Environ: env(t, "forever.wsgi", "RECORD_FILE", record, "QUERY_STRING", "trickle"), Out: out})
			if !errors.Is(err, ErrAborted) || !res.HeadersSent {
				t.Fatalf("got %v %+v", err, res)
			}
			if got, _ := os.ReadFile(record); string(got) != "closed" {
				t.Fatalf("close() of the iterable did not run: %q", got)
			}
		})
	}
}

func TestAbortWhileReadingInput(t *testing.T) {
	w, _ := startWorker(t, Config{})
	record := filepath.Join(t.TempDir(), "record")
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(200 * time.Millisecond)
		cancel()
		// What the bridge does when the client goes: the body read ends.
		pw.CloseWithError(errors.New("client gone"))
	}()
	start := time.Now()
	_, err := w.Serve(ctx, &Call{Environ: env(t, "forever.wsgi", "RECORD_FILE", record, "QUERY_STRING", "read",
		"REQUEST_METHOD", "POST", "CONTENT_LENGTH", "100"), Body: pr, Out: newSink()})
	if !errors.Is(err, ErrAborted) || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}
