package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// A body larger than body-buffer-size is read by the worker from the web
// server's connection itself (lending, see bridge/lend.go) when every
// process group runs as one identity.

const lentLine = "body read from the lent connection"

// postSHA posts body to url and checks the sha app's answer.
func postSHA(t *testing.T, url string, body []byte) {
	t.Helper()
	code, b := post(t, url, bytes.NewReader(body))
	want := fmt.Sprintf("%x %d\n", sha256.Sum256(body), len(body))
	if code != 200 || string(b) != want {
		t.Fatalf("POST %d bytes: %d %q, want %q", len(body), code, b, want)
	}
}

func randomish(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func TestLentUploads(t *testing.T) {
	s, n, _ := spine(t, 1, 4)
	for i := 0; i < 3; i++ {
		postSHA(t, n.url+"/sha", randomish(5<<20+i*7, byte(i)))
		if code, body := get(t, n.url+"/hello"); code != 200 || body != "Hello from wsgifcgi\n" {
			t.Fatalf("GET /hello after an upload: %d %q", code, body)
		}
	}
	if got := waitLines(s, 3, lentLine); got < 3 {
		t.Fatalf("%d uploads read from a lent connection, want 3:\n%s", got, s.log.String())
	}
	// Concurrent uploads, one thread each.
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			postSHA(t, n.url+"/sha", randomish(3<<20+i, byte(10+i)))
		}()
	}
	wg.Wait()
	// A response that begins while the body is lent: the echo app answers
	// after its first block, and the loan goes back with the rest unread.
	body := randomish(3<<20, 99)
	code, got := post(t, n.url+"/echo", bytes.NewReader(body))
	if code != 200 || !bytes.Equal(got, body) {
		t.Fatalf("echo of 3 MiB: %d, %d bytes back, equal %v", code, len(got), bytes.Equal(got, body))
	}
}

// Straight to the socket, with padded records of odd sizes: the worker
// parses them, the connection serves the next request after the loan (the
// bridge reads on exactly where the worker stopped), and an application
// that reads only part of the body leaves the rest to the bridge.
func TestLentConnectionKeepsServing(t *testing.T) {
	s, _, _ := daemonSetup(t, "threads = 2\nbody-buffer-size = 4096\n")
	c, err := net.Dial("unix", s.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	body := randomish(2<<20+13, 7)

	// send writes a request, its body from a goroutine; the returned channel
	// closes once all of it is written (the next request must wait for it,
	// as a front end does: nothing may cut into a record).
	send := func(id uint16, uri, query string, body []byte) chan struct{} {
		sent := make(chan struct{})
		ps := fcgiPost(uri, len(body))
		ps = append(ps, fcgiParam{"QUERY_STRING", query})
		var out bytes.Buffer
		keepRecord(&out, 1, id, []byte{0, 1, 1, 0, 0, 0, 0, 0}, 0) // responder, keep the connection
		keepRecord(&out, 4, id, encodeParams(ps), 0)
		keepRecord(&out, 4, id, nil, 0)
		go func() {
			defer close(sent)
			// Records of odd sizes and paddings, written in odd pieces.
			rest := body
			for i := 0; len(rest) > 0; i++ {
				k := min(len(rest), 1000+i*4099%40000)
				keepRecord(&out, 5, id, rest[:k], i%8)
				rest = rest[k:]
			}
			keepRecord(&out, 5, id, nil, 3)
			b := out.Bytes()
			for len(b) > 0 {
				k := min(len(b), 70001)
				if _, err := c.Write(b[:k]); err != nil {
					return
				}
				b = b[k:]
			}
		}()
		return sent
	}
	read := func() (int, string) {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		var stdout bytes.Buffer
		for {
			var h [8]byte
			if _, err := io.ReadFull(r, h[:]); err != nil {
				t.Fatalf("reading a record: %v (stdout so far %q)", err, stdout.String())
			}
			n, pad := int(binary.BigEndian.Uint16(h[4:])), int(h[6])
			content := make([]byte, n+pad)
			if _, err := io.ReadFull(r, content); err != nil {
				t.Fatal(err)
			}
			switch h[1] {
			case 6:
				stdout.Write(content[:n])
			case 3:
				head, rest, _ := strings.Cut(stdout.String(), "\r\n\r\n")
				code := 200
				if strings.HasPrefix(head, "Status: ") {
					fmt.Sscanf(head[len("Status: "):], "%d", &code)
				}
				return code, rest
			}
		}
	}

	<-send(1, "/readbody", "", body)
	if code, out := read(); code != 200 || out != fmt.Sprintf("%d bytes\n", len(body)) {
		t.Fatalf("first request: %d %q", code, out)
	}
	// Half the body read, then the answer: the bridge drains the rest.
	sent := send(2, "/readsleep", "1000000:0", body)
	if code, _ := read(); code != 200 {
		t.Fatalf("second request: %d", code)
	}
	<-sent
	send(3, "/readbody", "", body[:300000])
	if code, out := read(); code != 200 || out != "300000 bytes\n" {
		t.Fatalf("third request on the same connection: %d %q", code, out)
	}
	if got := waitLines(s, 2, lentLine); got < 2 {
		t.Fatalf("%d bodies read from a lent connection, want 2 at least:\n%s", got, s.log.String())
	}
}

func keepRecord(out *bytes.Buffer, typ byte, id uint16, content []byte, pad int) {
	var h [8]byte
	h[0], h[1] = 1, typ
	binary.BigEndian.PutUint16(h[2:], id)
	binary.BigEndian.PutUint16(h[4:], uint16(len(content)))
	h[6] = byte(pad)
	out.Write(h[:])
	out.Write(content)
	out.Write(make([]byte, pad))
}

// A worker lost while it holds the connection (request-timeout kills it)
// still gets its request answered: the 504 goes out, then the connection
// closes, its stream position being unknown; the next requests are served.
// The application reads past what the bridge holds in memory (1 MiB), so
// that its worker takes the loan before it sleeps.
func TestLentConnectionWorkerLost(t *testing.T) {
	s, n, _ := daemonSetup(t, "threads = 2\nrequest-timeout = 2\nbody-buffer-size = 4096\n")
	pidOf(t, n)
	start := time.Now()
	code, _ := post(t, n.url+"/readsleep?1500000:30", bytes.NewReader(randomish(4<<20, 3)))
	t.Logf("504 after %v", time.Since(start))
	if d := time.Since(start); code != 504 || d > 3*time.Second {
		t.Fatalf("a worker killed with the loan: %d after %v, want a 504 at about 2 s", code, d)
	}
	if !s.waitLog("lent connection not given back", 5*time.Second) {
		t.Errorf("no log of the lost loan:\n%s", s.log.String())
	}
	pidOf(t, n)
	code, b := post(t, n.url+"/readbody", bytes.NewReader(randomish(2<<20, 4)))
	if code != 200 || string(b) != fmt.Sprintf("%d bytes\n", 2<<20) {
		t.Fatalf("an upload after the lost loan: %d %q", code, b)
	}
}

// Process groups of different users: no loan (a worker could read what
// the connection carries next), and uploads cross the bridge as before.
func TestNoLoanAcrossIdentities(t *testing.T) {
	if workerUser() == "" {
		t.Skip("needs root: users apply only then")
	}
	s, n, _ := daemonSetup(t, "threads = 2\nuser = \"daemon\"\ngroup = \"daemon\"\n")
	pidOf(t, n)
	body := randomish(3<<20, 5)
	code, b := post(t, n.url+"/readbody", bytes.NewReader(body))
	if code != 200 || string(b) != fmt.Sprintf("%d bytes\n", len(body)) {
		t.Fatalf("upload: %d %q", code, b)
	}
	if strings.Contains(s.log.String(), lentLine) {
		t.Fatalf("a worker of one of two identities was lent the connection:\n%s", s.log.lines(lentLine))
	}
}

// SIGTERM while a worker reads a stalled body from the lent connection:
// once the drain times out (the longest shutdown-timeout: the embedded
// group's 5 s), the request is cut, the worker's read of the connection
// fails, and the bridge exits on time.
func TestShutdownWhileLent(t *testing.T) {
	s, n, _ := daemonSetupWith(t, "threads = 2\nbody-buffer-size = 4096\n", nginxUnbuffered)
	pidOf(t, n)
	httpStall(t, n, "/readbody", 200000, randomish(60000, 9))
	time.Sleep(500 * time.Millisecond) // the worker reads the rest from the connection
	if d := terminate(t, s); d > 7*time.Second {
		t.Errorf("exited %v after SIGTERM, want about shutdown-timeout (5 s)", d)
	}
	if got := waitLines(s, 1, "request cut by shutdown"); got != 1 {
		t.Errorf("%d requests logged as cut by shutdown, want 1:\n%s", got, s.log.String())
	}
	if got := waitLines(s, 1, "readbody: OSError 'request data read error'"); got != 1 {
		t.Errorf("the worker's read of the lent connection did not fail:\n%s", s.log.String())
	}
}
