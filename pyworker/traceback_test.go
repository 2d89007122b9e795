package pyworker

import (
	"errors"
	"strings"
	"testing"
)

// A traceback through the worker's own code names its file and shows its
// source lines, though the source only lives inside the binary.
func TestTracebackShowsWorkerSource(t *testing.T) {
	w, _ := startWorker(t, Config{})
	_, _, err, lb := serve(t, w, env(t, "workerframe.wsgi"), nil)
	if !errors.Is(err, ErrApplication) {
		t.Fatalf("got %v", err)
	}
	log := lb.String()
	for _, want := range []string{
		`File \"` + SourceName + `\", line `, // JSON-escaped quotes
		"in encode_headers",
		"raise ValueError('invalid response header name %r' % name)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("traceback lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "<wsgifcgi-worker>") {
		t.Errorf("traceback still names <wsgifcgi-worker>:\n%s", log)
	}
}

// Even after an application clears linecache, the worker's lines come back
// (the module's __loader__ serves its source), and __main__ has no
// __file__ for multiprocessing's spawn to re-run.
func TestWorkerSourceSurvivesClearcache(t *testing.T) {
	w, _ := startWorker(t, Config{})
	out, _, err, _ := serve(t, w, env(t, "clearcache.wsgi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "line: raise ValueError('invalid response header name %r' % name)\nmain file: None" {
		t.Fatalf("%q", got)
	}
}
