package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// scenario is one wrk workload on one of the apps (bench/apps/APP.wsgi).
type scenario struct {
	key, name string
	app       string // "hello" or "real": the contenders are started once per app
	path      string
	lua       string // extra Lua before the reporting done()
	body      int64  // request body bytes (upload)
	resp      int64  // response body bytes (download)
}

var scenarios = []scenario{
	{key: "hello", name: "hello", app: "hello", path: "/"},
	{key: "1m", name: "1 MiB response", app: "hello", path: "/1m", resp: 1 << 20},
	{key: "upload", name: "10 MiB upload", app: "hello", path: "/upload", body: 10 << 20,
		lua: "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\nwrk.body = string.rep(\"u\", 10 * 1024 * 1024)\n"},
	{key: "flask", name: "Flask", app: "real", path: "/flask/"},
	{key: "django", name: "Django", app: "real", path: "/django/"},
}

// apps are the scenario groups in run order.
var apps = []string{"hello", "real"}

const reportLua = `
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%.0f,"p99_us":%.0f,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
`

// sample is the outcome of one wrk run.
type sample struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Bytes      int64   `json:"bytes"`
	P50US      float64 `json:"p50_us"`
	P99US      float64 `json:"p99_us"`
	Connect    int64   `json:"connect"`
	Read       int64   `json:"read"`
	Write      int64   `json:"write"`
	Status     int64   `json:"status"`
	Timeout    int64   `json:"timeout"`
	Round      int     `json:"-"` // the interleaved round it was measured in
}

func (s sample) rps() float64 { return float64(s.Requests) / (float64(s.DurationUS) / 1e6) }
func (s sample) errors() int64 {
	return s.Connect + s.Read + s.Write + s.Status + s.Timeout
}

// mibps is the payload throughput in MiB/s for the scenario.
func (s sample) mibps(sc scenario) float64 {
	return s.rps() * float64(sc.body+sc.resp) / (1 << 20)
}

func writeScripts(dir string) error {
	for _, sc := range scenarios {
		if err := os.WriteFile(filepath.Join(dir, "wrk-"+sc.key+".lua"), []byte(sc.lua+reportLua), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// runWrk runs wrk against url for d with c connections.
func runWrk(dir string, sc scenario, url string, c int, d time.Duration) (sample, error) {
	return runWrkThreads(dir, sc, url, 2, c, d)
}

// runWrkThreads is runWrk with t load threads.
func runWrkThreads(dir string, sc scenario, url string, t, c int, d time.Duration) (sample, error) {
	args := []string{"-t", strconv.Itoa(t), "-c", strconv.Itoa(c), "-d", fmt.Sprintf("%ds", int(d.Seconds())),
		"--timeout", "10s", "--latency", "-s", filepath.Join(dir, "wrk-"+sc.key+".lua"), url + sc.path}
	out, err := exec.CommandContext(stopCtx, "wrk", args...).CombinedOutput()
	if err != nil {
		return sample{}, fmt.Errorf("wrk %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "WRKJSON "); ok {
			var s sample
			if err := json.Unmarshal([]byte(rest), &s); err != nil {
				return sample{}, fmt.Errorf("wrk output %q: %v", rest, err)
			}
			if s.DurationUS == 0 {
				s.DurationUS = 1
			}
			return s, nil
		}
	}
	return sample{}, fmt.Errorf("wrk printed no summary:\n%s", out)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
