package pyworker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// FuzzWorkerFrames feeds the frame reader what a broken or hostile worker
// could write on its pipe (an application can write to the descriptor
// itself). The bridge serves every virtual host, so whatever comes: it must
// not crash, every Serve waiting on the worker must return once the pipe
// ends, a Sink must see one well-formed CGI header block before any body
// and nothing after its response ended or Serve returned, and a Serve that
// succeeds has passed a response on.
func FuzzWorkerFrames(f *testing.F) {
	gone := exitedProcess(f)
	for _, seed := range workerFrameSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		w := standIn(gone, zerolog.Nop())

		const calls = 3 // stream ids 1, 2, 3; the third sends a body
		sinks := make([]*fuzzSink, calls)
		var served sync.WaitGroup
		for i := range sinks {
			sinks[i] = &fuzzSink{}
			c := &Call{Out: sinks[i], Log: zerolog.Nop()}
			if i == calls-1 {
				c.Body = strings.NewReader(strings.Repeat("b", bodyWindow+maxBody))
			}
			sinks[i].serving.Store(true)
			served.Add(1)
			go func(s *fuzzSink) {
				defer served.Done()
				res, err := w.Serve(context.Background(), c)
				s.mu.Lock()
				if err == nil && (!s.headers || !res.HeadersSent) {
					s.fail("Serve succeeded without a response")
				}
				s.mu.Unlock()
				s.serving.Store(false)
			}(sinks[i])
			for w.InFlight() != i+1 { // ids in order: the frames name them
				time.Sleep(10 * time.Microsecond)
			}
		}
		w.readLoop(bufio.NewReader(bytes.NewReader(data)))

		done := make(chan struct{})
		go func() { served.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a Serve did not return after the worker's pipe ended")
		}
		for i, s := range sinks {
			if err := s.failure(); err != nil {
				t.Errorf("sink of stream %d: %v", i+1, err)
			}
		}
	})
}

// exitedProcess is a process that has exited, for a standIn's Kill.
func exitedProcess(t testing.TB) *exec.Cmd {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("no process to stand for the worker: %v", err)
	}
	return cmd
}

// standIn is a Worker with no Python behind it, for feeding readLoop by
// hand. Its Kill signals gone; an aborted Serve waits for its END or the
// end of the pipe, not for a clock.
func standIn(gone *exec.Cmd, log zerolog.Logger) *Worker {
	w := &Worker{
		cfg: Config{AbortWait: time.Hour}, cmd: gone, pid: gone.Process.Pid, log: log,
		out:     rawio.NewWriter(io.Discard),
		streams: make(map[uint32]*stream),
		lost:    make(chan struct{}), ready: make(chan struct{}), done: make(chan struct{}),
	}
	w.bufs.New = func() any { b := make([]byte, maxData); return &b }
	return w
}

// A frame over the size its type allows is a broken worker's: the reader
// stops there, before it allocates or reads the payload. One at the size
// passes that check (its payload is missing here: the pipe ends).
func TestFrameSizeLimits(t *testing.T) {
	gone := exitedProcess(t)
	for _, typ := range []uint8{tReady, tHeaders, tData, tWant, tLog, tEnd, tPing, tResponse, 99} {
		for _, over := range []bool{false, true} {
			n := int(maxPayload(typ))
			if over {
				n++
			}
			var log bytes.Buffer
			w := standIn(gone, zerolog.New(&log))
			hdr := make([]byte, headerSize)
			putHeader(hdr, typ, 0, 1, n)
			w.readLoop(bufio.NewReader(bytes.NewReader(hdr)))
			if killed := strings.Contains(log.String(), "oversized frame"); killed != over {
				t.Errorf("type %d, %d bytes: killed %v; log %s", typ, n, killed, log.String())
			}
		}
	}
}

// fuzzSink checks the Sink contract; it takes whole responses.
type fuzzSink struct {
	serving atomic.Bool // Serve has not returned

	mu      sync.Mutex
	headers bool
	ended   bool
	err     error
}

func (s *fuzzSink) fail(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf(format, args...)
	}
}

func (s *fuzzSink) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// use checks a call's order: phase is "header", "body" or "whole".
func (s *fuzzSink) use(phase string) {
	switch {
	case !s.serving.Load():
		s.fail("%s after Serve returned", phase)
	case s.ended:
		s.fail("%s after the response ended", phase)
	case phase == "body" && !s.headers:
		s.fail("body before the headers")
	case phase != "body" && s.headers:
		s.fail("%s after the headers", phase)
	}
}

func (s *fuzzSink) WriteHeader(status int, block []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.use("header")
	s.headers = true
	if err := checkCGIBlock(status, block); err != nil {
		s.fail("%v", err)
	}
	return nil
}

func (s *fuzzSink) Write(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.use("body")
	return nil
}

func (s *fuzzSink) WriteFinal(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.use("body")
	s.ended = true
	return nil
}

func (s *fuzzSink) WriteWhole(status int, block, body []byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.use("whole")
	s.headers, s.ended = true, true
	if err := checkCGIBlock(status, block); err != nil {
		s.fail("%v", err)
	}
	return true, nil
}

// checkCGIBlock checks what a web server will parse: a Status line with
// status, then "name: value" lines, no CR or LF inside a line, a blank line.
func checkCGIBlock(status int, block []byte) error {
	text, ok := strings.CutSuffix(string(block), "\r\n\r\n")
	if !ok {
		return fmt.Errorf("header block %q does not end in a blank line", block)
	}
	lines := strings.Split(text, "\r\n")
	if want := fmt.Sprintf("Status: %03d ", status); !strings.HasPrefix(lines[0], want) || status < 100 {
		return fmt.Errorf("status line %q for status %d", lines[0], status)
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n\x00") {
			return fmt.Errorf("header line %q", l)
		}
		name, _, ok := strings.Cut(l, ": ")
		if !ok || !isToken([]byte(name)) || name == "" {
			return fmt.Errorf("header line %q", l)
		}
	}
	return nil
}

// workerFrameSeeds are a worker's usual answers, and the broken ones the
// reader already knows, for the streams 1-3 that the fuzz target opens.
func workerFrameSeeds() [][]byte {
	fr := func(typ, flags uint8, id uint32, payload string) string {
		b := make([]byte, headerSize)
		putHeader(b, typ, flags, id, len(payload))
		return string(b) + payload
	}
	u32 := func(n int) string { return string(binary.BigEndian.AppendUint32(nil, uint32(n))) }
	headers := "200 OK\x00Content-Type\x00text/plain"
	whole := u32(len(headers)) + headers + "hello"
	seeds := []string{
		fr(tPing, 0, 0, "") + fr(tResponse, outOK, 1, whole) + fr(tResponse, outOK, 2, whole),
		fr(tHeaders, 0, 1, headers) + fr(tData, 0, 1, "body") + fr(tLog, levelWarn, 1, "a line") +
			fr(tData, 0, 1, "more") + fr(tEnd, outOK, 1, ""),
		fr(tWant, 0, 3, u32(1<<20)) + fr(tHeaders, 0, 3, headers) + fr(tEnd, outOK, 3, ""),
		fr(tEnd, outAppError, 1, "") + fr(tEnd, outNotFound, 2, "") + fr(tEnd, outReload, 3, ""),
		fr(tEnd, outOK, 1, "") + fr(tData, 0, 2, "no headers") + fr(tEnd, 99, 2, ""),
		fr(tHeaders, 0, 1, "200 OK\x00X\x00a\r\nSet-Cookie: b") + fr(tHeaders, 0, 2, "20 OK\x00"),
		fr(tHeaders, 0, 1, headers) + fr(tResponse, outOK, 1, whole),
		fr(tResponse, outOK, 1, u32(1000)+"short") + fr(tResponse, outAppError, 2, whole),
		fr(tReady, 0, 0, "1\x003.11") + fr(tReady, 0, 0, "garbage"),
		fr(tData, 0, 1, strings.Repeat("d", maxData+1)) + fr(77, 0, 1, "unknown"),
		fr(tLog, 0, 1, strings.Repeat("x", 100))[:headerSize+3],            // truncated
		string([]byte{tData, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}), // oversized
	}
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}
