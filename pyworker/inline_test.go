package pyworker

import (
	"context"
	"testing"
	"time"
)

// With one thread, two requests that waited in the pipe behind a busy one
// run one after the other: the first one's answer goes out before the
// second starts, so a slow request never holds back the finished answer
// read with it.
func TestAnswerNotHeldBehindNextRequest(t *testing.T) {
	w, _ := startWorker(t, Config{})
	serve := func(app, query string) <-chan time.Time {
		done := make(chan time.Time, 1)
		go func() {
			_, err := w.Serve(context.Background(), &Call{Environ: env(t, app, "QUERY_STRING", query), Out: newSink()})
			if err != nil {
				t.Errorf("%s?%s: %v", app, query, err)
			}
			done <- time.Now()
		}()
		return done
	}
	busy := serve("nap.wsgi", "1")
	time.Sleep(100 * time.Millisecond) // the worker's one thread naps
	fast := serve("hello.wsgi", "")
	time.Sleep(300 * time.Millisecond) // in the pipe before the slow one
	slow := serve("nap.wsgi", "2")
	<-busy
	fastAt, slowAt := <-fast, <-slow
	if d := slowAt.Sub(fastAt); d < time.Second {
		t.Errorf("the fast request was answered %v before the slow one ended: its answer waited for it", d)
	}
}
