package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metricsConf serves testdata/lifecycle/app.wsgi at / from [daemon.site1]
// with the given options, and the metrics on unix:metricsSock.
func metricsConf(script, metricsSock, options string) string {
	return fmt.Sprintf(`
[server]
python-executable = %q
socket-mode = "0666"
metrics = "unix:%s"

[embedded]
%s
[daemon.site1]
%s
%s
[[script-alias]]
url = "/"
path = %q
process-group = "site1"
application-group = "%%{GLOBAL}"
`, python, metricsSock, workerUser(), workerUser(), options, script)
}

// scrape fetches /metrics over the unix socket and returns its samples by
// series ("name{labels}"), checking that every line is well formed.
func scrape(t *testing.T, sock string) (map[string]float64, string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://metrics/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})?) (\S+)$`)
	comment := regexp.MustCompile(`^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary))$`)
	out := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, "#") {
			if !comment.MatchString(line) {
				t.Errorf("bad comment line %q", line)
			}
			continue
		}
		m := sample.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("bad sample line %q", line)
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			t.Errorf("bad value in %q", line)
		}
		out[m[1]] = v
	}
	return out, string(b)
}

// waitMetrics scrapes until every wanted series has its value.
func waitMetrics(t *testing.T, sock string, want map[string]float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, text := scrape(t, sock)
		bad := ""
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				bad += fmt.Sprintf("\n%s = %v (present %v), want %v", k, g, ok, v)
			}
		}
		if bad == "" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics:%s\n%s", bad, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestMetrics(t *testing.T) {
	dir := testDir(t)
	b, err := os.ReadFile("testdata/lifecycle/app.wsgi")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "app.wsgi")
	os.WriteFile(script, b, 0o644)
	msock := filepath.Join(dir, "metrics.sock")
	s := startServer(t, dir, metricsConf(script, msock, "processes = 1\nthreads = 2\nmaximum-requests = 3"))
	n := startNginx(t, dir, s.sock, nginxFastCGI)

	for i := 0; i < 7; i++ {
		if code, body := get(t, n.url+"/pid"); code != 200 {
			t.Fatalf("GET /pid: %d %q", code, body)
		}
	}
	// 7 requests with maximum-requests = 3: two workers were replaced.
	got := waitMetrics(t, msock, map[string]float64{
		`wsgifcgi_requests_total{process_group="site1",status="200"}`:                     7,
		`wsgifcgi_requests_in_flight`:                                                     0,
		`wsgifcgi_request_duration_seconds_count{process_group="site1"}`:                  7,
		`wsgifcgi_request_duration_seconds_bucket{process_group="site1",le="+Inf"}`:       7,
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="maximum-requests"}`: 2,
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="died"}`:             0,
		`wsgifcgi_workers_alive{process_group="site1"}`:                                   1,
	})
	if q := got[`wsgifcgi_queue_wait_seconds_count{process_group="site1"}`]; q < 7 {
		t.Errorf("queue wait observed %v times for 7 requests", q)
	}
	if d := got[`wsgifcgi_request_duration_seconds_sum{process_group="site1"}`]; d <= 0 {
		t.Errorf("request duration sum %v", d)
	}
	// The standard collectors of the bridge process sit beside them.
	for _, k := range []string{"process_start_time_seconds", "process_open_fds", "process_resident_memory_bytes", "go_goroutines", "go_gc_duration_seconds_count"} {
		if v, ok := got[k]; !ok || v < 0 || v == 0 && k != "go_gc_duration_seconds_count" {
			t.Errorf("%s = %v (present %v)", k, v, ok)
		}
	}

	// A killed worker is "died"; SIGUSR1 is "restart-signal".
	syscall.Kill(pidOf(t, n), syscall.SIGKILL)
	waitMetrics(t, msock, map[string]float64{
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="died"}`: 1,
	})
	pidOf(t, n) // waits for the respawned worker
	waitMetrics(t, msock, map[string]float64{
		`wsgifcgi_workers_alive{process_group="site1"}`: 1,
	})
	s.cmd.Process.Signal(syscall.SIGUSR1)
	waitMetrics(t, msock, map[string]float64{
		`wsgifcgi_worker_restarts_total{process_group="site1",reason="restart-signal"}`: 1,
	})
	pidOf(t, n)
	waitMetrics(t, msock, map[string]float64{
		`wsgifcgi_requests_total{process_group="site1",status="200"}`: 10,
		`wsgifcgi_workers_alive{process_group="site1"}`:               1,
	})
}

func TestMetricsKeyIsChecked(t *testing.T) {
	for _, v := range []string{"fd:3", "unix:rel/path", "tcp:9109", "http://x"} {
		code, _, errOut := runCheck(t, map[string]string{"a.toml": "[server]\nmetrics = \"" + v + "\"\n"})
		if code != 1 || !strings.Contains(errOut, "server.metrics") {
			t.Errorf("metrics = %q: exit %d, %q", v, code, errOut)
		}
	}
}
