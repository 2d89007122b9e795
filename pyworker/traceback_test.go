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
