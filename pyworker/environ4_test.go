package pyworker

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// TestModWSGI4Environ: the keys mod_wsgi 4.9 adds to the environ and to its
// module, with its types: ints for the counters, strings for the rest.
func TestModWSGI4Environ(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 1, Processes: 3})
	report := func(kv ...string) map[string][2]any {
		t.Helper()
		out, _, err, _ := serve(t, w, env(t, "environ4.wsgi", kv...), nil)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string][2]any
		if err := json.Unmarshal(out.body.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", out.String(), err)
		}
		return m
	}
	before := time.Now().UnixMicro()
	first := report()
	second := report("mod_wsgi.queue_start", "1")
	want := map[string][2]any{
		"mod_wsgi.thread_id": {"int", 1.0}, "mod_wsgi.thread_requests": {"int", 0.0},
		"mod_wsgi.total_requests": {"int", 0.0}, "mod_wsgi.ignore_activity": {"str", "0"},
		"mod_wsgi.enable_sendfile":   {"str", "0"},
		"module.threads_per_process": {"int", 1.0}, "module.maximum_processes": {"int", 3.0},
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("first request: %s = %v, want %v", k, first[k], v)
		}
	}
	if _, ok := first["mod_wsgi.daemon_connects"]; ok {
		t.Errorf("daemon_connects outside a daemon group: %v", first)
	}
	ss := first["mod_wsgi.script_start"]
	if n, err := strconv.ParseInt(ss[1].(string), 10, 64); ss[0] != "str" || err != nil || n < before || n > time.Now().UnixMicro() {
		t.Errorf("script_start = %v, want µs since the epoch as a string", ss)
	}
	if second["mod_wsgi.thread_requests"] != [2]any{"int", 1.0} || second["mod_wsgi.total_requests"] != [2]any{"int", 1.0} ||
		second["mod_wsgi.thread_id"] != [2]any{"int", 1.0} {
		t.Errorf("second request counters: %v", second)
	}
	if second["mod_wsgi.daemon_connects"] != [2]any{"str", "1"} {
		t.Errorf("daemon group: daemon_connects = %v, want '1'", second["mod_wsgi.daemon_connects"])
	}
}
