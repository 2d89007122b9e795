package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wsgifcgi/wsgifcgi/groups/pool"
)

// scrape returns the handler's text exposition.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q", ct)
	}
	return rec.Body.String()
}

func TestMetricsAndHandler(t *testing.T) {
	m := New()
	pe := m.Pool("site1")
	if m.Pool("site1") != pe {
		t.Fatal("Pool is not stable per group")
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.RequestStarted()
			pe.QueueWait(time.Millisecond)
			m.RequestDone("site1", 200, 20*time.Millisecond)
		}()
	}
	wg.Wait()
	pe.WorkerStarted()
	pe.WorkerStarted()
	pe.WorkerExited()
	pe.WorkerReplaced(pool.ReasonMaximumRequests)
	pe.WorkerReplaced(pool.Reason("something-new")) // not a known reason: still counted
	m.RequestStarted()
	m.RequestDone("", 404, time.Millisecond)
	m.RequestStarted()
	m.RequestDone("site1", 999, time.Millisecond) // outside the status cache
	m.RequestStarted()                            // still in flight

	var nilM *Metrics // disabled: every report is a no-op
	nilM.RequestStarted()
	nilM.RequestDone("x", 200, 0)

	body := scrape(t, m)
	for _, line := range []string{
		"# HELP wsgifcgi_requests_total FastCGI requests served, by process group (empty: not routed) and HTTP status.",
		"# TYPE wsgifcgi_requests_total counter",
		`wsgifcgi_requests_total{process_group="site1",status="200"} 8`,
		`wsgifcgi_requests_total{process_group="",status="404"} 1`,
		`wsgifcgi_requests_total{process_group="site1",status="999"} 1`,
		"# TYPE wsgifcgi_requests_in_flight gauge",
		`wsgifcgi_requests_in_flight 1`,
		"# TYPE wsgifcgi_request_duration_seconds histogram",
		`wsgifcgi_request_duration_seconds_bucket{process_group="site1",le="0.025"} 9`,
		`wsgifcgi_request_duration_seconds_bucket{process_group="site1",le="0.01"} 1`,
		`wsgifcgi_request_duration_seconds_bucket{process_group="site1",le="60"} 9`,
		`wsgifcgi_request_duration_seconds_bucket{process_group="site1",le="+Inf"} 9`,
		`wsgifcgi_request_duration_seconds_count{process_group="site1"} 9`,
		`wsgifcgi_request_duration_seconds_count{process_group=""} 1`,
		"# TYPE wsgifcgi_queue_wait_seconds histogram",
		`wsgifcgi_queue_wait_seconds_bucket{process_group="site1",le="0.001"} 8`,
		`wsgifcgi_queue_wait_seconds_count{process_group="site1"} 8`,
		"# TYPE wsgifcgi_worker_restarts_total counter",
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="maximum-requests"} 1`,
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="died"} 0`,
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="worker-retired"} 0`,
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="something-new"} 1`,
		"# TYPE wsgifcgi_workers_alive gauge",
		`wsgifcgi_workers_alive{process_group="site1"} 1`,
		// The standard collectors.
		"# TYPE process_start_time_seconds gauge",
		"# TYPE process_open_fds gauge",
		"# TYPE go_goroutines gauge",
		"# TYPE go_gc_duration_seconds summary",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("missing %q in:\n%s", line, body)
		}
	}
	// Every reason a pool reports is exported from the group's first use.
	for _, r := range pool.Reasons() {
		if r != pool.ReasonMaximumRequests && !strings.Contains(body, `wsgifcgi_worker_restarts_total{process_group="site1",reason="`+string(r)+`"} 0`+"\n") {
			t.Errorf("reason %s not exported as 0", r)
		}
	}
	// An unrouted request makes no pool series for "".
	for _, s := range []string{`wsgifcgi_workers_alive{process_group=""}`, `wsgifcgi_queue_wait_seconds_count{process_group=""}`} {
		if strings.Contains(body, s) {
			t.Errorf("unexpected %s", s)
		}
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

// TestConcurrentFirstUse has many requests see a group and a status for the
// first time at once (run with -race): none may be lost.
func TestConcurrentFirstUse(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, g := range []string{"a", "b"} {
				m.RequestStarted()
				m.RequestDone(g, 503, time.Millisecond)
			}
		}()
	}
	wg.Wait()
	body := scrape(t, m)
	for _, line := range []string{
		`wsgifcgi_requests_total{process_group="a",status="503"} 64`,
		`wsgifcgi_requests_total{process_group="b",status="503"} 64`,
		`wsgifcgi_request_duration_seconds_count{process_group="a"} 64`,
		`wsgifcgi_requests_in_flight 0`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("missing %q", line)
		}
	}
}

// BenchmarkRequestDone measures the per-request cost on many goroutines.
func BenchmarkRequestDone(b *testing.B) {
	m := New()
	m.Pool("site1")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RequestStarted()
			m.RequestDone("site1", 200, 3*time.Millisecond)
		}
	})
}
