// Package metrics keeps the bridge's counters, gauges and histograms and
// writes them in the Prometheus text exposition format (version 0.0.4).
//
// Registry is a small general registry of labelled metric families;
// Metrics (metrics.go) declares wsgifcgi's own families on one. Nothing is
// global: the command creates a Metrics and hands it to the gateway.
package metrics

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Registry holds metric families and writes them in registration order.
type Registry struct {
	mu   sync.Mutex
	fams []*family
}

// family is one metric name with its label names and series.
type family struct {
	name, help, typ string
	labels          []string
	buckets         []float64 // histogram upper bounds, ascending, without +Inf

	mu     sync.Mutex
	series map[string]*series
}

type series struct {
	values []string
	v      float64  // counter, gauge
	counts []uint64 // histogram: per bucket (not cumulative)
	sum    float64
	count  uint64
}

// Counter is a family of monotonically increasing values.
type Counter struct{ f *family }

// Gauge is a family of values that go up and down.
type Gauge struct{ f *family }

// Histogram is a family of observations counted into buckets.
type Histogram struct{ f *family }

func (r *Registry) add(name, help, typ string, buckets []float64, labels []string) *family {
	if !validName(name, false) {
		panic("metrics: invalid metric name " + strconv.Quote(name))
	}
	for _, l := range labels {
		if !validName(l, true) || l == "le" && typ == "histogram" {
			panic("metrics: invalid label name " + strconv.Quote(l))
		}
	}
	f := &family{name: name, help: help, typ: typ, labels: labels, buckets: buckets, series: map[string]*series{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.fams {
		if o.name == name {
			panic("metrics: duplicate metric " + name)
		}
	}
	r.fams = append(r.fams, f)
	return f
}

// NewCounter registers a counter family; by convention its name ends in _total.
func (r *Registry) NewCounter(name, help string, labels ...string) *Counter {
	return &Counter{r.add(name, help, "counter", nil, labels)}
}

// NewGauge registers a gauge family.
func (r *Registry) NewGauge(name, help string, labels ...string) *Gauge {
	return &Gauge{r.add(name, help, "gauge", nil, labels)}
}

// NewHistogram registers a histogram family with the given bucket upper
// bounds (sorted here; +Inf is implicit).
func (r *Registry) NewHistogram(name, help string, buckets []float64, labels ...string) *Histogram {
	b := append([]float64(nil), buckets...)
	sort.Float64s(b)
	if n := len(b); n > 0 && math.IsInf(b[n-1], 1) {
		b = b[:n-1]
	}
	return &Histogram{r.add(name, help, "histogram", b, labels)}
}

// get returns the series of the label values, creating it; the caller holds f.mu.
func (f *family) get(values []string) *series {
	if len(values) != len(f.labels) {
		panic(fmt.Sprintf("metrics: %s takes %d label values, got %d", f.name, len(f.labels), len(values)))
	}
	key := strings.Join(values, "\xff")
	s := f.series[key]
	if s == nil {
		s = &series{values: append([]string(nil), values...)}
		if f.typ == "histogram" {
			s.counts = make([]uint64, len(f.buckets))
		}
		f.series[key] = s
	}
	return s
}

// Add adds v (≥ 0) to the series of the label values.
func (c *Counter) Add(v float64, values ...string) {
	if v < 0 {
		panic("metrics: a counter cannot decrease")
	}
	c.f.mu.Lock()
	c.f.get(values).v += v
	c.f.mu.Unlock()
}

// Inc adds one.
func (c *Counter) Inc(values ...string) { c.Add(1, values...) }

// Add adds v (may be negative) to the series of the label values.
func (g *Gauge) Add(v float64, values ...string) {
	g.f.mu.Lock()
	g.f.get(values).v += v
	g.f.mu.Unlock()
}

// Set sets the series of the label values.
func (g *Gauge) Set(v float64, values ...string) {
	g.f.mu.Lock()
	g.f.get(values).v = v
	g.f.mu.Unlock()
}

// Observe counts v into the series of the label values.
func (h *Histogram) Observe(v float64, values ...string) {
	h.f.mu.Lock()
	s := h.f.get(values)
	if i := sort.SearchFloat64s(h.f.buckets, v); i < len(s.counts) {
		s.counts[i]++ // the first bucket with v <= bound
	}
	s.sum += v
	s.count++
	h.f.mu.Unlock()
}

// WriteText writes every family in the text exposition format.
func (r *Registry) WriteText(w io.Writer) error {
	r.mu.Lock()
	fams := append([]*family(nil), r.fams...)
	r.mu.Unlock()
	bw := bufio.NewWriter(w)
	for _, f := range fams {
		f.write(bw)
	}
	return bw.Flush()
}

func (f *family) write(w *bufio.Writer) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", f.name, escapeHelp(f.help), f.name, f.typ)
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]string, 0, len(f.series))
	for k := range f.series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s := f.series[k]
		if f.typ != "histogram" {
			f.sample(w, "", s.values, "", s.v)
			continue
		}
		var cum uint64
		for i, b := range f.buckets {
			cum += s.counts[i]
			f.sample(w, "_bucket", s.values, formatFloat(b), float64(cum))
		}
		f.sample(w, "_bucket", s.values, "+Inf", float64(s.count))
		f.sample(w, "_sum", s.values, "", s.sum)
		f.sample(w, "_count", s.values, "", float64(s.count))
	}
}

// sample writes one line: name+suffix{labels[,le]} value.
func (f *family) sample(w *bufio.Writer, suffix string, values []string, le string, v float64) {
	w.WriteString(f.name)
	w.WriteString(suffix)
	if len(values) > 0 || le != "" {
		w.WriteByte('{')
		for i, val := range values {
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString(f.labels[i])
			w.WriteString(`="`)
			w.WriteString(escapeLabel(val))
			w.WriteByte('"')
		}
		if le != "" {
			if len(values) > 0 {
				w.WriteByte(',')
			}
			w.WriteString(`le="`)
			w.WriteString(le)
			w.WriteByte('"')
		}
		w.WriteByte('}')
	}
	w.WriteByte(' ')
	w.WriteString(formatFloat(v))
	w.WriteByte('\n')
}

// ServeHTTP serves the text format (GET and HEAD).
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", ContentType)
	if req.Method == http.MethodHead {
		return
	}
	_ = r.WriteText(w)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// validName checks [a-zA-Z_:][a-zA-Z0-9_:]* (no colon in label names, and
// label names starting with __ are reserved).
func validName(s string, label bool) bool {
	if s == "" || label && strings.HasPrefix(s, "__") {
		return false
	}
	for i, c := range s {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
			i > 0 && c >= '0' && c <= '9' || !label && c == ':'
		if !ok {
			return false
		}
	}
	return true
}
