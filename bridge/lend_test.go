//go:build linux

package bridge

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// splicedBody is what a handler that pumps its body as the worker pump
// does (Splice while it moves bytes, Read otherwise) got through a pipe.
type splicedBody struct {
	sum     []byte
	n       int64 // bytes in all
	spliced int64 // of which by Splice
	err     error // the body's failure
}

// pumpBody moves r's body into a pipe, splicing where it can, and hashes
// what comes out of the pipe. after, if set, runs once after the first
// spliced bytes.
func pumpBody(t *testing.T, r *Request, after func()) splicedBody {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Error(err)
		return splicedBody{err: err}
	}
	defer pr.Close()
	sp := rawio.NewSplicer(pw)
	if sp == nil {
		t.Error("no splicer for a pipe")
		pw.Close()
		return splicedBody{}
	}
	done := make(chan splicedBody, 1)
	go func() {
		h := sha256.New()
		n, _ := io.Copy(h, pr)
		done <- splicedBody{sum: h.Sum(nil), n: n}
	}()
	var res splicedBody
	body := r.Stdin.(Body)
	buf := make([]byte, 48<<10)
	for {
		n, err := body.Splice(64<<10, sp.Move)
		res.spliced += int64(n)
		if n > 0 && after != nil {
			after()
			after = nil
		}
		if err == nil && n == 0 {
			var m int
			m, err = body.Read(buf)
			pw.Write(buf[:m])
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			res.err = err
			break
		}
	}
	pw.Close()
	got := <-done
	res.sum, res.n = got.sum, got.n
	return res
}

// sendRecords sends a body of size bytes as STDIN records of random sizes
// and padding, each in a write of its own, with extra (records of its
// own) sent once the body is half sent, and then waits for stall, if
// set; it returns the body's sha256.
func sendRecords(client io.Writer, size int, extra []byte, stall <-chan struct{}) <-chan []byte {
	sum := make(chan []byte, 1)
	go func() {
		rnd := rand.New(rand.NewPCG(1, 2))
		h := sha256.New()
		client.Write(append(beginRec(1, RoleResponder, false), rec(typeParams, 1, nil, 0)...))
		data := make([]byte, 65535)
		for n := 0; n < size; {
			if extra != nil && n >= size/2 {
				client.Write(extra)
				extra = nil
				if stall != nil {
					<-stall
				}
			}
			m := min(1+rnd.IntN(65535), size-n)
			for i := range data[:m] {
				data[i] = byte((n + i) * 7)
			}
			h.Write(data[:m])
			if _, err := client.Write(rec(typeStdin, 1, data[:m], rnd.IntN(8))); err != nil {
				return
			}
			n += m
		}
		client.Write(rec(typeStdin, 1, nil, 0))
		sum <- h.Sum(nil)
	}()
	return sum
}

// stalled is a stall that lasts until the test ends.
func stalled(t *testing.T) <-chan struct{} {
	c := make(chan struct{})
	t.Cleanup(func() { close(c) })
	return c
}

// lendServer serves one connection with a 64 KiB memory buffer; its
// handler runs pump and puts the result on the channel returned.
func lendServer(t *testing.T, pump func(w ResponseWriter, r *Request) splicedBody) (*Server, *net.UnixConn, <-chan splicedBody) {
	res := make(chan splicedBody, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		res <- pump(w, r)
		return EndStatus{}
	}))
	s.StdinBuffer = 64 << 10
	return s, serveConn(t, s), res
}

// pumpAll is a pump that moves the whole body.
func pumpAll(t *testing.T) func(ResponseWriter, *Request) splicedBody {
	return func(_ ResponseWriter, r *Request) splicedBody { return pumpBody(t, r, nil) }
}

// checkWhole fails unless got is the whole body of size bytes with the
// sha256 want, at least min of it spliced.
func checkWhole(t *testing.T, got splicedBody, size int, want <-chan []byte, min int) {
	t.Helper()
	if got.err != nil || got.n != int64(size) || !bytes.Equal(got.sum, <-want) {
		t.Fatalf("pumped %d of %d bytes (err %v), or not those sent", got.n, size, got.err)
	}
	if got.spliced < int64(min) {
		t.Fatalf("only %d of %d bytes spliced", got.spliced, size)
	}
}

// A body that is pumped by Splice crosses the socket into the pipe, from
// every place in the record stream where the reader lent the socket
// (records of all sizes and paddings, split across reads), whole and in
// order, nearly all of it spliced.
func TestSplicedBodyArrivesWhole(t *testing.T) {
	noLeaks(t)
	const size = 16 << 20
	_, client, res := lendServer(t, pumpAll(t))
	want := sendRecords(client, size, nil, nil)
	readResponse(t, client, 1)
	checkWhole(t, <-res, size, want, size/2)
}

// Records that are not the body's during a lend (a management record
// here) go back to the reader, which answers them; the body goes on.
func TestRecordsDuringLendReachTheReader(t *testing.T) {
	noLeaks(t)
	const size = 8 << 20
	_, client, res := lendServer(t, pumpAll(t))
	q := rec(typeGetValues, 0, encodePairs(Param{"FCGI_MPXS_CONNS", ""}), 3)
	want := sendRecords(client, size, q, nil)
	rc, err := readRec(t, client)
	if err != nil || rc.Type != typeGetValuesResult {
		t.Fatalf("first record back: %+v, %v; want GET_VALUES_RESULT", rc.header, err)
	}
	readResponse(t, client, 1)
	checkWhole(t, <-res, size, want, size/4)
}

// A response that starts during a lend takes the socket back: the rest of
// the body is read (spooled) by the reader, the handler reads it, and the
// response follows the end of STDIN.
func TestResponseDuringLend(t *testing.T) {
	noLeaks(t)
	const size = 8 << 20
	_, client, res := lendServer(t, func(w ResponseWriter, r *Request) splicedBody {
		wrote := make(chan struct{})
		got := pumpBody(t, r, func() {
			go func() { // the write waits for the end of STDIN
				io.WriteString(w, "Status: 200 OK\r\n\r\nearly")
				close(wrote)
			}()
		})
		<-wrote
		return got
	})
	want := sendRecords(client, size, nil, nil)
	resp := readResponse(t, client, 1)
	checkWhole(t, <-res, size, want, 1)
	if !bytes.Contains(resp.stdout, []byte("early")) {
		t.Fatalf("response %q", resp.stdout)
	}
}

// An abort during a lend reaches the reader and fails the body.
func TestAbortDuringLend(t *testing.T) {
	noLeaks(t)
	_, client, res := lendServer(t, pumpAll(t))
	sendRecords(client, 8<<20, rec(typeAbortRequest, 1, nil, 0), nil)
	select {
	case got := <-res:
		if !errors.Is(got.err, ErrAborted) || got.spliced == 0 {
			t.Fatalf("body after an abort: %d bytes (%d spliced), err %v", got.n, got.spliced, got.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the abort did not reach the body")
	}
	readResponse(t, client, 1)
}

// A body that stalls during a lend fails with ErrStdinTimeout after its
// idle timeout, and the web server is answered.
func TestStallDuringLend(t *testing.T) {
	noLeaks(t)
	_, client, res := lendServer(t, func(w ResponseWriter, r *Request) splicedBody {
		r.Stdin.(Body).SetIdleTimeout(200 * time.Millisecond)
		got := pumpBody(t, r, nil)
		io.WriteString(w, "Status: 408 Request Timeout\r\n\r\n")
		return got
	})
	// Half the body, then nothing (a record that is the body's would be
	// spliced: the stall comes between records).
	sendRecords(client, 8<<20, []byte{}, stalled(t))
	select {
	case got := <-res:
		if !errors.Is(got.err, ErrStdinTimeout) || got.spliced == 0 {
			t.Fatalf("stalled body: %d bytes (%d spliced), err %v", got.n, got.spliced, got.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stall did not end the body")
	}
	if resp := readResponse(t, client, 1); !bytes.Contains(resp.stdout, []byte("408")) {
		t.Fatalf("response %q", resp.stdout)
	}
}

// Closing the server ends a connection whose socket is lent, and the body
// fails.
func TestCloseDuringLend(t *testing.T) {
	noLeaks(t)
	var spliced atomic.Bool
	s, client, res := lendServer(t, func(_ ResponseWriter, r *Request) splicedBody {
		return pumpBody(t, r, func() { spliced.Store(true) })
	})
	sendRecords(client, 8<<20, []byte{}, stalled(t))
	if !eventually(spliced.Load) {
		t.Fatal("nothing was spliced")
	}
	time.Sleep(50 * time.Millisecond) // the body's reader waits on the socket
	s.Close()
	select {
	case got := <-res:
		if got.err == nil {
			t.Fatalf("body of a closed connection: %d bytes, no error", got.n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("closing the server did not end the body")
	}
	waitConnsEnded(t, s, 3*time.Second)
}

// A connection without a descriptor (net.Pipe) cannot be lent: a body
// that asks to splice is held back as any other.
func TestNoLendWithoutDescriptor(t *testing.T) {
	noLeaks(t)
	const size = 4 << 20
	var sent atomic.Int64
	res := make(chan splicedBody, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if n, err := r.Stdin.(Body).Splice(64<<10, func(uintptr, int) (int, error) { return 0, nil }); n != 0 || err != nil {
			t.Errorf("Splice on a pipe connection: %d, %v", n, err)
		}
		time.Sleep(300 * time.Millisecond)
		if n := sent.Load(); n > size/2 {
			t.Errorf("the web server sent %d bytes while the handler read none", n)
		}
		n, err := io.Copy(io.Discard, r.Stdin)
		res <- splicedBody{n: n, err: err}
		return EndStatus{}
	}))
	s.StdinBuffer = 64 << 10
	client, srv := net.Pipe()
	t.Cleanup(func() { client.Close() })
	go s.newConn(srv).serve()
	sum := sendBody(client, size, &sent)
	readResponse(t, client, 1)
	<-sum
	if got := <-res; got.err != nil || got.n != size {
		t.Fatalf("read %d of %d bytes, err %v", got.n, size, got.err)
	}
}
