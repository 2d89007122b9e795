package pool

import (
	"context"
	"errors"
	"testing"
	"time"
)

// request-timeout answers at the timeout, not after the abort wait, and
// the stuck worker is replaced in the background.
func TestRequestTimeoutReturnsAtTheTimeout(t *testing.T) {
	spec := testSpec(t, 1, 2)
	spec.RequestTimeout = 500 * time.Millisecond
	spec.Worker.AbortWait = 5 * time.Second // time.sleep ignores the abort
	spec.ShutdownTimeout = time.Second
	p := New(spec, nil)
	defer p.Close()
	old, err := call(t, p, context.Background(), "/", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = call(t, p, context.Background(), "/slow", "30")
	if d := time.Since(start); !errors.Is(err, ErrRequestTimeout) || d > 900*time.Millisecond {
		t.Fatalf("stuck request: %v after %v, want ErrRequestTimeout at 500 ms", err, d)
	}
	pid, err := call(t, p, context.Background(), "/", "")
	if err != nil || pid == old {
		t.Fatalf("after the timeout: pid %d (old %d), err %v", pid, old, err)
	}
}
