package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func text(t *testing.T, r *Registry) string {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestTextFormat(t *testing.T) {
	r := &Registry{}
	c := r.NewCounter("app_requests_total", "Requests.\nSecond line with a \\ backslash.", "group", "status")
	g := r.NewGauge("app_in_flight", "In flight.")
	h := r.NewHistogram("app_seconds", "Durations.", []float64{1, 0.5, 2}, "group")
	r.NewCounter("app_empty_total", "Never used.", "x")

	c.Inc("b", "200")
	c.Add(2, "a", "200")
	c.Inc("we\"ird\\\nname", "500")
	g.Add(3)
	g.Add(-1)
	h.Observe(0.5, "a") // on a bound: counted in le="0.5"
	h.Observe(0.7, "a")
	h.Observe(7, "a") // only in +Inf
	h.Observe(0.1, "b")

	want := `# HELP app_requests_total Requests.\nSecond line with a \\ backslash.
# TYPE app_requests_total counter
app_requests_total{group="a",status="200"} 2
app_requests_total{group="b",status="200"} 1
app_requests_total{group="we\"ird\\\nname",status="500"} 1
# HELP app_in_flight In flight.
# TYPE app_in_flight gauge
app_in_flight 2
# HELP app_seconds Durations.
# TYPE app_seconds histogram
app_seconds_bucket{group="a",le="0.5"} 1
app_seconds_bucket{group="a",le="1"} 2
app_seconds_bucket{group="a",le="2"} 2
app_seconds_bucket{group="a",le="+Inf"} 3
app_seconds_sum{group="a"} 8.2
app_seconds_count{group="a"} 3
app_seconds_bucket{group="b",le="0.5"} 1
app_seconds_bucket{group="b",le="1"} 1
app_seconds_bucket{group="b",le="2"} 1
app_seconds_bucket{group="b",le="+Inf"} 1
app_seconds_sum{group="b"} 0.1
app_seconds_count{group="b"} 1
# HELP app_empty_total Never used.
# TYPE app_empty_total counter
`
	if got := text(t, r); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestHistogramWithoutLabels(t *testing.T) {
	r := &Registry{}
	h := r.NewHistogram("x_seconds", "X.", []float64{1})
	h.Observe(2)
	want := "# HELP x_seconds X.\n# TYPE x_seconds histogram\n" +
		"x_seconds_bucket{le=\"1\"} 0\nx_seconds_bucket{le=\"+Inf\"} 1\nx_seconds_sum 2\nx_seconds_count 1\n"
	if got := text(t, r); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestRegistryRefusesMistakes(t *testing.T) {
	for name, f := range map[string]func(r *Registry){
		"bad metric name":   func(r *Registry) { r.NewGauge("1x", "") },
		"bad label name":    func(r *Registry) { r.NewGauge("x", "", "a-b") },
		"reserved label":    func(r *Registry) { r.NewGauge("x", "", "__x") },
		"le in a histogram": func(r *Registry) { r.NewHistogram("x", "", nil, "le") },
		"duplicate":         func(r *Registry) { r.NewGauge("x", ""); r.NewCounter("x", "") },
		"label count":       func(r *Registry) { r.NewGauge("x", "", "a").Set(1) },
		"negative counter":  func(r *Registry) { r.NewCounter("x", "").Add(-1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f(&Registry{})
		}()
	}
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
	pe.WorkerReplaced("maximum-requests")
	m.RequestStarted()
	m.RequestDone("", 404, time.Millisecond)

	var nilM *Metrics // disabled: every report is a no-op
	nilM.RequestStarted()
	nilM.RequestDone("x", 200, 0)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if ct := rec.Header().Get("Content-Type"); ct != ContentType {
		t.Errorf("Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, line := range []string{
		`wsgifcgi_requests_total{process_group="site1",status="200"} 8`,
		`wsgifcgi_requests_total{process_group="",status="404"} 1`,
		`wsgifcgi_requests_in_flight 0`,
		`wsgifcgi_request_duration_seconds_bucket{process_group="site1",le="0.025"} 8`,
		`wsgifcgi_request_duration_seconds_bucket{process_group="site1",le="0.01"} 0`,
		`wsgifcgi_request_duration_seconds_count{process_group="site1"} 8`,
		`wsgifcgi_queue_wait_seconds_count{process_group="site1"} 8`,
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="maximum-requests"} 1`,
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="died"} 0`,
		`wsgifcgi_workers_alive{process_group="site1"} 1`,
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("missing %q in:\n%s", line, body)
		}
	}
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("POST", "/metrics", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}
