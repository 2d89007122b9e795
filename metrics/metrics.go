package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Restart reasons that are exported as 0 from the first use of a process
// group on, so that rate() and increase() see them start.
var restartReasons = []string{
	"maximum-requests", "request-timeout", "inactivity-timeout", "restart-interval",
	"deadlock-timeout", "died", "restart-signal", "reload", "worker-retired",
}

// Buckets in seconds. Requests: Prometheus' defaults plus the long tail a
// WSGI application has; queue waits: mostly none, sometimes seconds.
var (
	DurationBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	QueueWaitBuckets = []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30}
)

// Metrics are wsgifcgi's metrics. The gateway reports requests, the pools
// (through Pool) their workers. A nil *Metrics ignores everything.
type Metrics struct {
	reg       *Registry
	requests  *Counter
	inFlight  *Gauge
	duration  *Histogram
	queueWait *Histogram
	restarts  *Counter
	workers   *Gauge

	mu    sync.Mutex
	pools map[string]*PoolEvents
}

// New declares the metrics on a new registry.
func New() *Metrics {
	r := &Registry{}
	return &Metrics{
		reg: r,
		requests: r.NewCounter("wsgifcgi_requests_total",
			"FastCGI requests served, by process group (empty: not routed) and HTTP status.", "process_group", "status"),
		inFlight: r.NewGauge("wsgifcgi_requests_in_flight", "FastCGI requests being served."),
		duration: r.NewHistogram("wsgifcgi_request_duration_seconds",
			"Time from the FastCGI request to the end of its response, by process group.", DurationBuckets, "process_group"),
		queueWait: r.NewHistogram("wsgifcgi_queue_wait_seconds",
			"Time a request waited for a free worker thread, by process group.", QueueWaitBuckets, "process_group"),
		restarts: r.NewCounter("wsgifcgi_worker_restarts_total",
			"Worker processes replaced, by process group and reason.", "process_group", "reason"),
		workers: r.NewGauge("wsgifcgi_workers_alive",
			"Worker processes running (serving or finishing their requests), by process group.", "process_group"),
		pools: map[string]*PoolEvents{},
	}
}

// Handler serves the metrics in the text exposition format.
func (m *Metrics) Handler() http.Handler { return m.reg }

// Registry is where the metrics are kept, for writing them out.
func (m *Metrics) Registry() *Registry { return m.reg }

// RequestStarted counts a request in flight; RequestDone ends it.
func (m *Metrics) RequestStarted() {
	if m != nil {
		m.inFlight.Add(1)
	}
}

// RequestDone records a finished request of processGroup ("" when it was
// not routed) with its HTTP status and duration.
func (m *Metrics) RequestDone(processGroup string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.inFlight.Add(-1)
	m.requests.Inc(processGroup, strconv.Itoa(status))
	m.duration.Observe(d.Seconds(), processGroup)
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
	pe := &PoolEvents{m: m, group: processGroup}
	m.pools[processGroup] = pe
	for _, r := range restartReasons {
		m.restarts.Add(0, processGroup, r)
	}
	m.workers.Add(0, processGroup)
	return pe
}

// PoolEvents records the worker events of one process group.
type PoolEvents struct {
	m     *Metrics
	group string
}

// WorkerStarted counts a worker process that became ready.
func (p *PoolEvents) WorkerStarted() { p.m.workers.Add(1, p.group) }

// WorkerExited uncounts a worker process that has exited.
func (p *PoolEvents) WorkerExited() { p.m.workers.Add(-1, p.group) }

// WorkerReplaced counts a restart for a reason.
func (p *PoolEvents) WorkerReplaced(reason string) { p.m.restarts.Inc(p.group, reason) }

// QueueWait records how long a request waited for a worker thread.
func (p *PoolEvents) QueueWait(d time.Duration) { p.m.queueWait.Observe(d.Seconds(), p.group) }
