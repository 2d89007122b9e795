package pyworker

import (
	"encoding/json"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// A traceback through the worker's own code names its files as they are in
// this repository, and each line number it gives points at the line it
// shows, though the sources only live inside the binary.
func TestTracebackShowsWorkerSource(t *testing.T) {
	w, _ := startWorker(t, Config{})
	_, _, err, lb := serve(t, w, env(t, "workerframe.wsgi"), nil)
	if !errors.Is(err, ErrApplication) {
		t.Fatalf("got %v", err)
	}
	var text strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(lb.String()), "\n") {
		var m struct{ Message string }
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		text.WriteString(m.Message + "\n")
	}
	log := text.String()
	frame := regexp.MustCompile(`File "` + regexp.QuoteMeta(SourceDir) + `([^"]+)", line (\d+), in (\w+)\n +(.*)\n`)
	funcs := map[string]bool{}
	for _, m := range frame.FindAllStringSubmatch(log, -1) {
		file, shown := m[1], strings.TrimSpace(m[4])
		funcs[file+":"+m[3]] = true
		src, err := os.ReadFile(file)
		if err != nil {
			t.Errorf("traceback names %s%s: %v", SourceDir, file, err)
			continue
		}
		n, _ := strconv.Atoi(m[2])
		lines := strings.Split(string(src), "\n")
		if n < 1 || n > len(lines) || strings.TrimSpace(lines[n-1]) != shown {
			t.Errorf("%s line %s shows %q, which is not that line of the file", file, m[2], shown)
		}
	}
	for _, want := range []string{"_wsgifcgi/response.py:encode_headers", "_wsgifcgi/response.py:check_name"} {
		if !funcs[want] {
			t.Errorf("traceback lacks %s:\n%s", want, log)
		}
	}
	if !strings.Contains(log, "raise ValueError('invalid response header name %r' % name)") {
		t.Errorf("traceback lacks the line that raised:\n%s", log)
	}
}

// Even after an application clears linecache, the worker's lines come back
// (its modules' loader serves their source), and __main__ has no __file__
// for multiprocessing's spawn to re-run.
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
