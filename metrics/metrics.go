// Package metrics exports wsgifcgi's metrics with Prometheus' client_golang,
// beside its standard process_* and go_* collectors.
//
// Nothing is global: the command creates a Metrics, with its own registry,
// and hands it to the gateway, which reports requests and, through Pool,
// its pools' worker events.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wsgifcgi/wsgifcgi/groups/pool"
)

// Buckets in seconds. Requests: Prometheus' defaults plus the long tail a
// WSGI application has; queue waits: mostly none, sometimes seconds.
var (
	DurationBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	QueueWaitBuckets = []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30}
)

// Metrics are wsgifcgi's metrics. The gateway reports requests, the pools
// (through Pool) their workers. RequestStarted and RequestDone of a nil
// *Metrics do nothing, so that the gateway needs no checks for them.
type Metrics struct {
	handler   http.Handler
	inFlight  atomic.Int64 // read by a GaugeFunc at scrape time
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	queueWait *prometheus.HistogramVec
	restarts  *prometheus.CounterVec
	workers   *prometheus.GaugeVec

	// groups holds each process group's request series (*groupSeries).
	// A sync.Map, because after a group's first request every lookup is
	// a read, which takes no lock.
	groups sync.Map

	mu    sync.Mutex
	pools map[string]*PoolEvents
}

// New declares the metrics on a new registry, with the process and Go
// runtime collectors.
func New() *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsgifcgi_requests_total",
			Help: "FastCGI requests served, by process group (empty: not routed) and HTTP status.",
		}, []string{"process_group", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wsgifcgi_request_duration_seconds",
			Help:    "Time from the FastCGI request to the end of its response, by process group.",
			Buckets: DurationBuckets,
		}, []string{"process_group"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wsgifcgi_queue_wait_seconds",
			Help:    "Time a request waited for a free worker thread, by process group.",
			Buckets: QueueWaitBuckets,
		}, []string{"process_group"}),
		restarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsgifcgi_worker_restarts_total",
			Help: "Worker processes replaced, by process group and reason.",
		}, []string{"process_group", "reason"}),
		workers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wsgifcgi_workers_alive",
			Help: "Worker processes running (serving or finishing their requests), by process group.",
		}, []string{"process_group"}),
		pools: map[string]*PoolEvents{},
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wsgifcgi_requests_in_flight",
		Help: "FastCGI requests being served.",
	}, func() float64 { return float64(m.inFlight.Load()) })

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		m.requests, inFlight, m.duration, m.queueWait, m.restarts, m.workers,
	)
	m.handler = getOnly(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return m
}

// Handler serves the metrics in the format the scraper asks for (the text
// format 0.0.4 when it asks for none).
func (m *Metrics) Handler() http.Handler { return m.handler }

// getOnly refuses methods other than GET and HEAD, which promhttp serves
// alike.
func getOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// RequestStarted counts a request in flight; RequestDone ends it.
func (m *Metrics) RequestStarted() {
	if m != nil {
		m.inFlight.Add(1)
	}
}

// RequestDone records a finished request of processGroup ("" when it was
// not routed) with its HTTP status and duration. It takes no lock once the
// group and status have been seen: the series are looked up in caches and
// updated atomically.
func (m *Metrics) RequestDone(processGroup string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.inFlight.Add(-1)
	gs := m.group(processGroup)
	gs.status(status).Inc()
	gs.duration.Observe(d.Seconds())
}

// groupSeries are one process group's request series, resolved once so that
// a request does not hash label values under the vectors' locks.
type groupSeries struct {
	duration prometheus.Observer
	requests *prometheus.CounterVec // curried with the group
	// byStatus caches the counters of statuses 100-599, filled on first use.
	byStatus [500]atomic.Pointer[prometheus.Counter]
}

func (m *Metrics) group(name string) *groupSeries {
	if gs, ok := m.groups.Load(name); ok {
		return gs.(*groupSeries)
	}
	// Two first requests may both get here; the loser's lookups were
	// idempotent and its struct is dropped.
	gs, _ := m.groups.LoadOrStore(name, &groupSeries{
		duration: m.duration.WithLabelValues(name),
		requests: m.requests.MustCurryWith(prometheus.Labels{"process_group": name}),
	})
	return gs.(*groupSeries)
}

func (gs *groupSeries) status(status int) prometheus.Counter {
	i := status - 100
	if i < 0 || i >= len(gs.byStatus) {
		return gs.requests.WithLabelValues(strconv.Itoa(status))
	}
	if c := gs.byStatus[i].Load(); c != nil {
		return *c
	}
	c := gs.requests.WithLabelValues(strconv.Itoa(status))
	gs.byStatus[i].Store(&c) // a racing store holds the same counter
	return c
}

// Pool returns the event sink of processGroup's pools (it satisfies
// groups/pool.Events). The same group always gets the same sink, so pool
// specs that carry it stay comparable across reloads.
func (m *Metrics) Pool(processGroup string) *PoolEvents {
	m.mu.Lock()
	defer m.mu.Unlock()
	if pe := m.pools[processGroup]; pe != nil {
		return pe
	}
	pe := &PoolEvents{
		workers:   m.workers.WithLabelValues(processGroup),
		queueWait: m.queueWait.WithLabelValues(processGroup),
		restarts:  m.restarts.MustCurryWith(prometheus.Labels{"process_group": processGroup}),
		byReason:  map[pool.Reason]prometheus.Counter{},
	}
	// Every reason is exported as 0 from the group's first use on, so that
	// rate() and increase() see it start.
	for _, r := range pool.Reasons() {
		pe.byReason[r] = pe.restarts.WithLabelValues(string(r))
	}
	m.pools[processGroup] = pe
	return pe
}

// PoolEvents records the worker events of one process group. Its series
// are resolved when it is made; byReason is read-only afterwards.
type PoolEvents struct {
	workers   prometheus.Gauge
	queueWait prometheus.Observer
	restarts  *prometheus.CounterVec // curried with the group
	byReason  map[pool.Reason]prometheus.Counter
}

// WorkerStarted counts a worker process that became ready.
func (p *PoolEvents) WorkerStarted() { p.workers.Inc() }

// WorkerExited uncounts a worker process that has exited.
func (p *PoolEvents) WorkerExited() { p.workers.Dec() }

// WorkerReplaced counts a restart for a reason.
func (p *PoolEvents) WorkerReplaced(reason pool.Reason) {
	c, ok := p.byReason[reason]
	if !ok {
		c = p.restarts.WithLabelValues(string(reason))
	}
	c.Inc()
}

// QueueWait records how long a request waited for a worker thread.
func (p *PoolEvents) QueueWait(d time.Duration) { p.queueWait.Observe(d.Seconds()) }
