package pyworker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// wholeSink is a sink that takes whole responses, as the gateway's does.
type wholeSink struct {
	*sink
	wholes int
}

func (s *wholeSink) WriteWhole(status int, block, body []byte) (bool, error) {
	s.wholes++
	if err := s.WriteHeader(status, block); err != nil {
		return true, err
	}
	return true, s.Write(body)
}

// A response whose whole body is known when the application returns (a
// list of one block, or a declared length of at most 64 KiB) reaches the
// Sink in one piece from the pipe's reader; others go through Write.
func TestWholeResponses(t *testing.T) {
	w, _ := startWorker(t, Config{})
	for _, tc := range []struct {
		query string
		whole bool
		n     int
	}{
		{"list", true, 20},
		{"declared", true, 20},
		{"undeclared", false, 20},
		{"large", false, 70000},
	} {
		out := &wholeSink{sink: newSink()}
		res, err := w.Serve(context.Background(), &Call{Environ: env(t, "whole.wsgi", "QUERY_STRING", tc.query), Out: out})
		if err != nil || res.Status != 200 || res.BytesOut != int64(tc.n) || out.body.Len() != tc.n {
			t.Errorf("%s: %+v %v, %d bytes", tc.query, res, err, out.body.Len())
		}
		if got := out.wholes == 1; got != tc.whole {
			t.Errorf("%s: whole %v, want %v", tc.query, got, tc.whole)
		}
	}
}

// A request waiting in the pipe of a busy one-thread worker whose client
// leaves is never started.
func TestAbortedWhileWaitingNeverRuns(t *testing.T) {
	w, _ := startWorker(t, Config{})
	busy := make(chan error, 1)
	go func() {
		_, err := w.Serve(context.Background(), &Call{Environ: env(t, "sleep.wsgi", "QUERY_STRING", "0.5"), Out: newSink()})
		busy <- err
	}()
	time.Sleep(100 * time.Millisecond) // the sleep runs
	mark := filepath.Join(t.TempDir(), "ran")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := w.Serve(ctx, &Call{Environ: env(t, "mark.wsgi", "QUERY_STRING", mark), Out: newSink()})
	if !errors.Is(err, ErrAborted) {
		t.Errorf("waiting request: %v, want ErrAborted", err)
	}
	if err := <-busy; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the application ran a request whose client had left")
	}
}
