//go:build linux

package pyworker

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
)

// pipeBody is a SpliceBody whose bytes wait in a real pipe: every other
// chunk is spliced from it, the rest read, as the bridge's STDIN gives a
// body partly from memory and partly from a lent socket.
type pipeBody struct {
	data    []byte
	r, w    *os.File
	turn    int
	spliced int
}

func (b *pipeBody) SpliceBody(max int, move func(fd uintptr, n int) (int, error)) (int, error) {
	b.turn++
	if len(b.data) == 0 || b.turn%2 == 0 {
		return 0, nil
	}
	n := min(max, len(b.data), 40000)
	if _, err := b.w.Write(b.data[:n]); err != nil {
		return 0, err
	}
	var m int
	var err error
	rc, _ := b.r.SyscallConn()
	rc.Control(func(fd uintptr) { m, err = move(fd, n) })
	b.data = b.data[m:]
	b.spliced += m
	return m, err
}

func (b *pipeBody) Read(p []byte) (int, error) {
	if len(b.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 30000)], b.data)
	b.data = b.data[n:]
	return n, nil
}

// Bodies that splice reach the application whole, with several requests
// at once on a worker (so that spliced frames meet frames other requests
// queue, and are then copied).
func TestSplicedBodiesReachTheApplication(t *testing.T) {
	w, _ := startWorker(t, Config{Threads: 4})
	if w.splicer == nil {
		t.Fatal("no splicer for the worker's pipe")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]byte, 3<<20+i*1000)
			for j := range data {
				data[j] = byte(j*13 + i)
			}
			r, pw, err := os.Pipe()
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			defer pw.Close()
			body := &pipeBody{data: data, r: r, w: pw}
			out, _, err, _ := serve(t, w, env(t, "echo.wsgi", "REQUEST_METHOD", "POST",
				"CONTENT_LENGTH", itoa(len(data)), "QUERY_STRING", "sha256"), body)
			if want := fmt.Sprintf("%x", sha256.Sum256(data)); err != nil || out.String() != want {
				t.Errorf("request %d: digest %s, want %s (err %v)", i, out.String(), want, err)
			}
			if body.spliced < len(data)/3 {
				t.Errorf("request %d: %d of %d bytes spliced", i, body.spliced, len(data))
			}
		}()
	}
	wg.Wait()
}

var _ SpliceBody = (*pipeBody)(nil)
