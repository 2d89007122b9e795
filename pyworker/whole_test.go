package pyworker

import (
	"context"
	"testing"
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
