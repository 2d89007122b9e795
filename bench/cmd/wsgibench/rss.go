package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// memResults are the wsgifcgi memory measurements, in KiB.
type memResults struct {
	idleRSS         int64
	connsRSS        int64 // RSS with the idle connections open
	connsWanted     int
	connsOpen       int // connections that connect() accepted
	connsServed     int // of those, answered a keep-alive request
	connsOK         int // of those, with a 200
	connsFirstFail  string
	upBridge        int64 // VmHWM during the 1 GiB upload
	upWorker        int64
	upSecs          float64
	upErr           string
	downBridge      int64 // VmHWM during the 1 GiB download
	downWorker      int64
	downSecs        float64
	downErr         string
	peakResetFailed bool
	err             string
}

// fcgiRecord encodes one FastCGI record with request id 1.
func fcgiRecord(typ byte, content []byte) []byte {
	pad := (8 - len(content)%8) % 8
	b := make([]byte, 8, 8+len(content)+pad)
	b[0], b[1] = 1, typ
	binary.BigEndian.PutUint16(b[2:], 1)
	binary.BigEndian.PutUint16(b[4:], uint16(len(content)))
	b[6] = byte(pad)
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

func fcgiPair(b []byte, k, v string) []byte {
	for _, s := range []string{k, v} {
		if len(s) < 128 {
			b = append(b, byte(len(s)))
		} else {
			b = binary.BigEndian.AppendUint32(b, uint32(len(s))|1<<31)
		}
	}
	return append(append(b, k...), v...)
}

// fcgiHelloRequest is GET / with FCGI_KEEP_CONN: BEGIN_REQUEST, PARAMS, STDIN.
var fcgiHelloRequest = func() []byte {
	var req []byte
	req = append(req, fcgiRecord(1, []byte{0, 1, 1, 0, 0, 0, 0, 0})...)
	var p []byte
	for _, kv := range [][2]string{
		{"GATEWAY_INTERFACE", "CGI/1.1"}, {"REQUEST_METHOD", "GET"}, {"REQUEST_URI", "/"},
		{"SCRIPT_NAME", ""}, {"PATH_INFO", "/"}, {"QUERY_STRING", ""}, {"SERVER_NAME", "127.0.0.1"},
		{"SERVER_PORT", "80"}, {"SERVER_PROTOCOL", "HTTP/1.1"}, {"REMOTE_ADDR", "127.0.0.1"},
		{"REMOTE_PORT", "40000"}, {"SERVER_ADDR", "127.0.0.1"}, {"HTTP_HOST", "127.0.0.1"},
	} {
		p = fcgiPair(p, kv[0], kv[1])
	}
	req = append(req, fcgiRecord(4, p)...)
	req = append(req, fcgiRecord(4, nil)...)
	return append(req, fcgiRecord(5, nil)...)
}()

// fcgiRoundTrip sends the hello request on c and reads records until
// END_REQUEST; it reports whether the response was a 200.
func fcgiRoundTrip(c net.Conn, r *bufio.Reader) (bool, error) {
	if _, err := c.Write(fcgiHelloRequest); err != nil {
		return false, err
	}
	var stdout []byte
	h := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, h); err != nil {
			return false, err
		}
		n := int(binary.BigEndian.Uint16(h[4:])) + int(h[6])
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return false, err
		}
		switch h[1] {
		case 6: // STDOUT
			if len(stdout) < 512 {
				stdout = append(stdout, body[:binary.BigEndian.Uint16(h[4:])]...)
			}
		case 3: // END_REQUEST
			s := string(stdout)
			return !strings.HasPrefix(s, "Status:") || strings.HasPrefix(s, "Status: 200"), nil
		}
	}
}

// idleConns opens n connections to the bridge's socket, makes one
// keep-alive request on each (in batches), and leaves them all open.
// It returns the connections (to close later) and the counts.
func idleConns(sock string, n int, m *memResults) []net.Conn {
	m.connsWanted = n
	// The harness holds the n descriptors too. Go raises the soft limit to
	// the hard one; below n the failures would be ours, not the bridge's.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n)+256 {
		logf("  the harness's open-file limit is %d (hard %d), too low for %d connections: raise it (ulimit -Hn)", lim.Cur, lim.Max, n)
	}
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := dialUnix(sock)
		if err != nil {
			if m.connsFirstFail == "" {
				m.connsFirstFail = fmt.Sprintf("connection %d: %v", i+1, err)
			}
			continue
		}
		conns = append(conns, c)
	}
	m.connsOpen = len(conns)
	// Small batches: one worker thread serves them.
	var served, good200 atomic.Int64
	const batch = 50
	for i := 0; i < len(conns); i += batch {
		j := min(i+batch, len(conns))
		var wg sync.WaitGroup
		var ok atomic.Int64
		for _, c := range conns[i:j] {
			wg.Add(1)
			go func(c net.Conn) {
				defer wg.Done()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if good, err := fcgiRoundTrip(c, bufio.NewReaderSize(c, 4096)); err == nil {
					ok.Add(1)
					if good {
						good200.Add(1)
					}
				}
				c.SetDeadline(time.Time{})
			}(c)
		}
		wg.Wait()
		served.Add(ok.Load())
		if ok.Load() == 0 {
			break // the bridge accepts no more: do not wait on every batch
		}
	}
	m.connsServed = int(served.Load())
	m.connsOK = int(good200.Load())
	return conns
}

// dialUnix connects to a unix socket. connect() on a unix socket whose
// listen backlog is full fails at once with EAGAIN (unlike tcp, where the
// SYN is retried): that says the dialing loop got ahead of the accepting
// one, so it waits a little and tries again, for up to 5 s.
func dialUnix(sock string) (net.Conn, error) {
	deadline := time.Now().Add(5 * time.Second)
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		c, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err == nil || !errors.Is(err, syscall.EAGAIN) || time.Now().After(deadline) {
			return c, err
		}
		time.Sleep(wait)
	}
}

type genReader struct{ left int64 }

var genChunk = []byte(strings.Repeat("z", 64<<10))

func (g *genReader) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p, genChunk)
	if int64(n) > g.left {
		n = int(g.left)
	}
	g.left -= int64(n)
	return n, nil
}

// bigUpload posts size bytes to url and checks the echoed count.
func bigUpload(url string, size int64) error {
	req, err := http.NewRequest("POST", url, &genReader{left: size})
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	c := &http.Client{Timeout: 10 * time.Minute}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != strconv.FormatInt(size, 10) {
		return fmt.Errorf("upload: %d %q", resp.StatusCode, b)
	}
	return nil
}

// bigDownload reads size bytes from url.
func bigDownload(url string, size int64) error {
	c := &http.Client{Timeout: 10 * time.Minute}
	resp, err := c.Get(fmt.Sprintf("%s?n=%d", url, size))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || n != size {
		return fmt.Errorf("download: status %d, %d of %d bytes", resp.StatusCode, n, size)
	}
	return nil
}

// measureMemory runs the memory part: wsgifcgi 1×1 behind its own nginx.
func measureMemory(e *env, nconns int, bigSize int64) (m memResults) {
	defer func() {
		if r := recover(); r != nil {
			m.err = fmt.Sprint(r)
		}
	}()
	sock := e.dir + "/mem.sock"
	c := capacity{procs: 1, threads: 1}
	bridge, err := startBridge(e, "mem-wsgifcgi", sock, c, false)
	if err != nil {
		m.err = err.Error()
		return m
	}
	defer bridge.stop()
	ct := &contender{key: "mem", port: freePort(), nginx: fastcgiBlock("mem")}
	ng, err := startNginx(e, "mem-nginx", []*contender{ct})
	if ng != nil {
		defer ng.stop()
	}
	if err != nil {
		m.err = err.Error()
		return m
	}
	var workerPID int
	for i := 0; i < 20; i++ {
		code, body, err := getBody(ct.url() + "/pid")
		if err != nil || code != 200 {
			m.err = fmt.Sprintf("GET /pid: %d %q %v", code, body, err)
			return m
		}
		workerPID, _ = strconv.Atoi(strings.TrimSpace(body))
	}
	time.Sleep(2 * time.Second)
	m.idleRSS, _ = procStatus(bridge.pid(), "VmRSS")

	conns := idleConns(sock, nconns, &m)
	time.Sleep(2 * time.Second)
	m.connsRSS, _ = procStatus(bridge.pid(), "VmRSS")
	for _, c := range conns {
		c.Close()
	}
	time.Sleep(time.Second)

	peak := func(run func() error) (bridgeKB, workerKB int64, secs float64, errText string) {
		if resetPeak(bridge.pid()) != nil || resetPeak(workerPID) != nil {
			m.peakResetFailed = true
		}
		t := time.Now()
		if err := run(); err != nil {
			errText = err.Error()
		}
		secs = time.Since(t).Seconds()
		bridgeKB, _ = procStatus(bridge.pid(), "VmHWM")
		workerKB, _ = procStatus(workerPID, "VmHWM")
		return
	}
	m.upBridge, m.upWorker, m.upSecs, m.upErr = peak(func() error { return bigUpload(ct.url()+"/stream/upload", bigSize) })
	m.downBridge, m.downWorker, m.downSecs, m.downErr = peak(func() error { return bigDownload(ct.url()+"/stream/big", bigSize) })
	return m
}
