package integration

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// docs/operations.md "Several hosts": wsgifcgi instances, each on a tcp
// listener, behind one nginx upstream with keepalive and
// fastcgi_next_upstream. Here the hosts are two loopback addresses. One
// instance is stopped with SIGTERM under load: no request fails.
func TestTwoHostsBehindOneUpstreamSurviveSIGTERM(t *testing.T) {
	addrs := []string{"127.0.0.1", "127.0.0.2"}
	var servers []*server
	var upstream string
	for i, host := range addrs {
		dir := testDir(t)
		apps := appsDir(t, dir)
		addr := fmt.Sprintf("%s:%d", host, freePortOn(t, host))
		// web-server-addrs names the front end: nginx connects from 127.0.0.1.
		conf := fmt.Sprintf(`
[server]
python-executable = %q
web-server-addrs = ["127.0.0.1"]

[embedded]
threads = 4
%s
[[script-alias]]
url = "/"
path = %q
`, python, workerUser(), filepath.Join(apps, "app.wsgi"))
		s := startServer(t, dir, conf, "--listen", "tcp:"+addr)
		waitTCP(t, addr, s.done, s.log)
		servers = append(servers, s)
		upstream += fmt.Sprintf("    server %s max_fails=0;  # host %d\n", addr, i+1)
	}
	n := startNginxWith(t, testDir(t), "upstream wsgifcgi {\n"+upstream+"    keepalive 16;\n}\n", `
        location / {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_NAME "";
            fastcgi_pass wsgifcgi;
            fastcgi_keep_conn on;
            fastcgi_next_upstream error timeout invalid_header http_503;
            fastcgi_next_upstream_tries 3;
        }
`)

	// Load: clients in a loop until stopped; every response must be a 200
	// with the whole body.
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stopLoad := underLoad(6, func() {
		resp, err := client.Get(n.url + "/hello")
		if err == nil {
			var b []byte
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode != 200 || string(b) != "Hello from wsgifcgi\n") {
				err = fmt.Errorf("%d %q", resp.StatusCode, b)
			}
		}
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			return
		}
		ok.Add(1)
	})
	waitServed := func(n int64) {
		deadline := time.Now().Add(20 * time.Second)
		for ok.Load() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitServed(200)
	// Both hosts took requests before the stop (the access log is written
	// in batches, up to 50 ms late).
	for i, s := range servers {
		if !s.waitLog(`"uri":"/hello"`, 2*time.Second) {
			t.Errorf("host %d served nothing", i+1)
		}
	}
	servers[0].cmd.Process.Signal(syscall.SIGTERM)
	if code := servers[0].exitCode(20 * time.Second); code != 0 {
		t.Errorf("host 1 after SIGTERM: exit %d", code)
	}
	at := ok.Load()
	waitServed(at + 300)
	stopLoad()
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed across the SIGTERM of one host; first: %v", f, ok.Load()+f, firstErr.Load())
	}
	if ok.Load() < at+300 {
		t.Fatalf("only %d requests after the stop", ok.Load()-at)
	}
	t.Logf("%d requests, none failed; host 2 alone served %d after host 1 stopped", ok.Load(), ok.Load()-at)
}

// freePortOn is a free tcp port on host.
func freePortOn(t *testing.T, host string) int {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
