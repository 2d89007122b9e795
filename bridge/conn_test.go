package bridge

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParamsAcrossRecordsWithPadding(t *testing.T) {
	noLeaks(t)
	want := []Param{
		{"SCRIPT_NAME", "/a"},
		{strings.Repeat("N", 200), strings.Repeat("v", 70000)}, // 4-byte lengths
		{"EMPTY", ""},
		{"SCRIPT_NAME", "/b"}, // duplicates keep their order
		{"", "x"},
	}
	got := make(chan []Param, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		got <- r.Params
		return EndStatus{AppStatus: 7}
	}))
	client := serveConn(t, s)
	enc := encodePairs(want...)
	var in []byte
	in = append(in, beginRec(1, RoleResponder, false)...)
	// Records of 1, 2, 3... bytes with padding 0..255: pairs and even
	// length fields straddle records.
	for i, size := 0, 1; len(enc) > 0; i, size = i+1, size*3+1 {
		n := min(size, len(enc), 65535)
		in = append(in, rec(typeParams, 1, enc[:n], (i*37)%256)...)
		enc = enc[n:]
	}
	in = append(in, rec(typeParams, 1, nil, 5)...)
	in = append(in, rec(typeStdin, 1, nil, 0)...)
	if _, err := client.Write(in); err != nil {
		t.Fatal(err)
	}
	resp := readResponse(t, client, 1)
	ps := <-got
	if len(ps) != len(want) {
		t.Fatalf("got %d params, want %d", len(ps), len(want))
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("param %d = %.40q=%.40q, want %.40q=%.40q", i, ps[i].Name, ps[i].Value, want[i].Name, want[i].Value)
		}
	}
	if resp.end != (EndStatus{AppStatus: 7}) {
		t.Errorf("end = %+v", resp.end)
	}
	// Handler wrote nothing: exactly the empty STDOUT and END_REQUEST.
	if len(resp.records) != 2 || resp.records[0].Type != typeStdout || len(resp.records[0].content) != 0 {
		t.Errorf("records = %+v", resp.records)
	}
	expectClosed(t, client, 2*time.Second) // no FCGI_KEEP_CONN
}

func TestGetValues(t *testing.T) {
	s, _ := testServer(t, echoHandler())
	s.MaxConns, s.MaxReqs = 7, 9
	client := serveConn(t, s)
	q := encodePairs(Param{"FCGI_MAX_CONNS", ""}, Param{"NOPE", ""}, Param{"FCGI_MPXS_CONNS", ""}, Param{"FCGI_MAX_REQS", ""}, Param{"FCGI_MAX_CONNS", ""})
	client.Write(rec(typeGetValues, 0, q, 3))
	rc, err := readRec(t, client)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Type != typeGetValuesResult || rc.ID != 0 {
		t.Fatalf("got %+v", rc.header)
	}
	ps, err := decodePairs(string(rc.content), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Param{{"FCGI_MAX_CONNS", "7"}, {"FCGI_MPXS_CONNS", "1"}, {"FCGI_MAX_REQS", "9"}}
	if len(ps) != len(want) {
		t.Fatalf("got %v, want %v", ps, want)
	}
	for i := range want {
		if ps[i] != want[i] {
			t.Errorf("got %v, want %v", ps, want)
		}
	}
}

func TestUnknownManagementType(t *testing.T) {
	s, _ := testServer(t, echoHandler())
	client := serveConn(t, s)
	client.Write(rec(200, 0, []byte("abc"), 0))
	client.Write(rec(typeBeginRequest, 0, make([]byte, 8), 0)) // not a management type
	for _, typ := range []byte{200, typeBeginRequest} {
		rc, err := readRec(t, client)
		if err != nil {
			t.Fatal(err)
		}
		if rc.Type != typeUnknownType || rc.ID != 0 || !bytes.Equal(rc.content, []byte{typ, 0, 0, 0, 0, 0, 0, 0}) {
			t.Fatalf("got %+v %v", rc.header, rc.content)
		}
	}
	// Still usable.
	client.Write(requestBytes(1, true, []Param{{"A", "b"}}, nil))
	if r := readResponse(t, client, 1); string(r.stdout) != "Content-Type: text/plain\r\n\r\nA=b\n" {
		t.Errorf("stdout %q", r.stdout)
	}
}

func TestUnknownRole(t *testing.T) {
	noLeaks(t)
	called := make(chan uint16, 4)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		called <- r.Role
		return EndStatus{}
	}))
	client := serveConn(t, s)
	in := beginRec(3, RoleAuthorizer, true)
	in = append(in, rec(typeParams, 3, encodePairs(Param{"A", "b"}), 0)...)
	in = append(in, rec(typeParams, 3, nil, 0)...)
	in = append(in, rec(typeStdin, 3, nil, 0)...)
	in = append(in, requestBytes(4, true, nil, nil)...)
	client.Write(in)
	rs := readResponses(t, client, 3, 4)
	if rs[3].end.ProtocolStatus != StatusUnknownRole || len(rs[3].records) != 1 {
		t.Errorf("authorizer: %+v", rs[3])
	}
	if rs[4].end.ProtocolStatus != StatusRequestComplete {
		t.Errorf("responder: %+v", rs[4].end)
	}
	if role := <-called; role != RoleResponder {
		t.Errorf("handler saw role %d", role)
	}
	select {
	case r := <-called:
		t.Errorf("handler called again for role %d", r)
	case <-time.After(50 * time.Millisecond):
	}
}

func TestAcceptRole(t *testing.T) {
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		return EndStatus{AppStatus: uint32(r.Role)}
	}))
	s.AcceptRole = func(r uint16) bool { return r == RoleAuthorizer }
	client := serveConn(t, s)
	in := beginRec(1, RoleAuthorizer, true)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	in = append(in, beginRec(2, RoleResponder, true)...)
	client.Write(in)
	rs := readResponses(t, client, 1, 2)
	if rs[1].end != (EndStatus{AppStatus: 2}) || rs[2].end.ProtocolStatus != StatusUnknownRole {
		t.Errorf("got %+v %+v", rs[1].end, rs[2].end)
	}
}

func TestMultiplexedInterleaved(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, echoHandler())
	client := serveConn(t, s)
	var in []byte
	for id := uint16(1); id <= 3; id++ {
		in = append(in, beginRec(id, RoleResponder, true)...)
	}
	for id := uint16(3); id >= 1; id-- {
		in = append(in, rec(typeParams, id, encodePairs(Param{"ID", string(rune('0' + id))}), 0)...)
	}
	for id := uint16(1); id <= 3; id++ {
		in = append(in, rec(typeParams, id, nil, 0)...)
	}
	for i := 0; i < 3; i++ {
		for id := uint16(1); id <= 3; id++ {
			in = append(in, rec(typeStdin, id, []byte{byte('a' + i), byte('0' + id)}, 0)...)
		}
	}
	for id := uint16(2); id <= 4; id++ {
		in = append(in, rec(typeStdin, id%4+id/4, nil, 0)...) // ids 2, 3, 1
	}
	client.Write(in)
	rs := readResponses(t, client, 1, 2, 3)
	for id := uint16(1); id <= 3; id++ {
		d := string(rune('0' + id))
		want := "Content-Type: text/plain\r\n\r\nID=" + d + "\na" + d + "b" + d + "c" + d
		if string(rs[id].stdout) != want || rs[id].end.AppStatus != 1 {
			t.Errorf("id %d: %q %+v, want %q", id, rs[id].stdout, rs[id].end, want)
		}
	}
	if s.Active() != 0 {
		t.Errorf("Active = %d", s.Active())
	}
}

func TestAbortRunning(t *testing.T) {
	noLeaks(t)
	type seen struct{ readErr, writeErr, ctxErr error }
	res := make(chan seen, 1)
	started := make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if len(r.Params) > 0 {
			return echoHandler()(w, r)
		}
		close(started)
		io.ReadFull(r.Stdin, make([]byte, 2))
		_, rerr := r.Stdin.Read(make([]byte, 10)) // blocks: no more STDIN yet
		<-r.Context().Done()
		_, werr := w.Write([]byte("late"))
		res <- seen{rerr, werr, r.Context().Err()}
		return EndStatus{AppStatus: 5}
	}))
	client := serveConn(t, s)
	in := beginRec(1, RoleResponder, true)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	in = append(in, rec(typeStdin, 1, []byte("ab"), 0)...) // the handler starts here
	client.Write(in)
	<-started
	client.Write(rec(typeAbortRequest, 1, nil, 0))
	r := readResponse(t, client, 1)
	got := <-res
	if !errors.Is(got.readErr, ErrAborted) || !errors.Is(got.writeErr, ErrAborted) || !errors.Is(got.ctxErr, context.Canceled) {
		t.Errorf("handler saw %+v", got)
	}
	if r.end != (EndStatus{AppStatus: 5}) || len(r.stdout) != 0 {
		t.Errorf("response %+v", r)
	}
	// The id is free again and the connection works.
	client.Write(requestBytes(1, true, []Param{{"P", "q"}}, []byte("x")))
	if r := readResponse(t, client, 1); string(r.stdout) != "Content-Type: text/plain\r\n\r\nP=q\nx" {
		t.Errorf("after abort: %q", r.stdout)
	}
}

func TestAbortBeforeParams(t *testing.T) {
	noLeaks(t)
	called := make(chan struct{}, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		called <- struct{}{}
		return EndStatus{}
	}))
	client := serveConn(t, s)
	in := beginRec(1, RoleResponder, true)
	in = append(in, rec(typeParams, 1, encodePairs(Param{"A", "b"}), 0)...)
	in = append(in, rec(typeAbortRequest, 1, nil, 0)...)
	in = append(in, rec(typeParams, 1, nil, 0)...) // ignored: no longer active
	client.Write(in)
	r := readResponse(t, client, 1)
	if r.end != (EndStatus{}) || len(r.records) != 2 {
		t.Errorf("response %+v", r.records)
	}
	select {
	case <-called:
		t.Error("handler called for an aborted request")
	case <-time.After(50 * time.Millisecond):
	}
	if s.Active() != 0 {
		t.Errorf("Active = %d", s.Active())
	}
}

func TestLostConnectionCancels(t *testing.T) {
	noLeaks(t)
	res := make(chan error, 1)
	started := make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		close(started)
		<-r.Context().Done()
		_, err := io.ReadAll(r.Stdin)
		res <- err
		return EndStatus{}
	}))
	client := serveConn(t, s)
	in := append(beginRec(1, RoleResponder, true), rec(typeParams, 1, nil, 0)...)
	client.Write(append(in, rec(typeStdin, 1, []byte("x"), 0)...)) // starts the handler
	<-started
	client.Close()
	if err := <-res; !errors.Is(err, ErrAborted) {
		t.Errorf("stdin after loss: %v", err)
	}
	waitConnsEnded(t, s, 5*time.Second)
}

func TestKeepConn(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, echoHandler())
	client := serveConn(t, s)
	for i := 0; i < 3; i++ {
		client.Write(requestBytes(1, true, []Param{{"I", "x"}}, []byte("body")))
		if r := readResponse(t, client, 1); !bytes.HasSuffix(r.stdout, []byte("I=x\nbody")) {
			t.Fatalf("request %d: %q", i, r.stdout)
		}
	}
	client.Write(requestBytes(1, false, nil, nil))
	readResponse(t, client, 1)
	expectClosed(t, client, 2*time.Second)
}

func TestCloseDrainsUnreadStdin(t *testing.T) {
	noLeaks(t)
	// The handler answers without reading STDIN. Its response waits until
	// the web server has sent all of STDIN (nginx stops sending the body
	// once a response starts), then the connection is closed.
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		io.WriteString(w, "Status: 413\r\n\r\n")
		return EndStatus{}
	}))
	client := serveConn(t, s)
	in := beginRec(1, RoleResponder, false)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	in = append(in, rec(typeStdin, 1, make([]byte, 1000), 0)...)
	client.Write(in)
	client.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := client.Read(make([]byte, 1)); n > 0 || err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("answered or closed before STDIN ended: %d bytes, %v", n, err)
	}
	client.SetReadDeadline(time.Time{})
	client.Write(rec(typeStdin, 1, make([]byte, 3000), 0))
	client.Write(rec(typeStdin, 1, nil, 0))
	r := readResponse(t, client, 1)
	if string(r.stdout) != "Status: 413\r\n\r\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	expectClosed(t, client, 2*time.Second)
}

func TestOversizeParams(t *testing.T) {
	noLeaks(t)
	s, logs := testServer(t, echoHandler())
	s.MaxParamsBytes, s.MaxParams = 100, 3
	client := serveConn(t, s)
	cases := map[string][]byte{
		"MaxParamsBytes": encodePairs(Param{"A", strings.Repeat("x", 100)}),
		"MaxParams":      encodePairs(Param{"A", ""}, Param{"B", ""}, Param{"C", ""}, Param{"D", ""}),
		"absurd":         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"inside a pair":  {5, 1, 'a'},
	}
	for name, enc := range cases {
		in := beginRec(1, RoleResponder, true)
		in = append(in, rec(typeParams, 1, enc, 0)...)
		in = append(in, rec(typeParams, 1, []byte("more junk"), 0)...)
		in = append(in, rec(typeParams, 1, nil, 0)...)
		in = append(in, rec(typeStdin, 1, []byte("discarded"), 0)...)
		in = append(in, rec(typeStdin, 1, nil, 0)...)
		if name == "inside a pair" {
			in = append(beginRec(1, RoleResponder, true), rec(typeParams, 1, enc, 0)...)
			in = append(in, rec(typeParams, 1, nil, 0)...)
			in = append(in, rec(typeStdin, 1, nil, 0)...)
		}
		client.Write(in)
		r := readResponse(t, client, 1)
		if !strings.HasPrefix(string(r.stdout), "Status: 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n") || r.end != (EndStatus{}) {
			t.Errorf("%s: %q %+v", name, r.stdout, r.end)
		}
		// The connection still serves a request.
		client.Write(requestBytes(2, true, []Param{{"OK", "1"}}, []byte("in")))
		if r := readResponse(t, client, 2); !bytes.HasSuffix(r.stdout, []byte("OK=1\nin")) {
			t.Errorf("%s: next request got %q", name, r.stdout)
		}
	}
	for _, want := range []string{"MaxParamsBytes (100)", "MaxParams (3)", "malformed"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

func TestMalformedFramingCloses(t *testing.T) {
	noLeaks(t)
	cases := map[string][]byte{
		"version":      {2, 1, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0},
		"unknown type": rec(42, 1, nil, 0),
		"short begin":  rec(typeBeginRequest, 1, []byte{0, 1}, 0),
		"truncated":    rec(typeParams, 1, []byte("abcdef"), 0)[:10],
	}
	for name, in := range cases {
		s, logs := testServer(t, echoHandler())
		client := serveConn(t, s)
		client.Write(in)
		client.CloseWrite()
		expectClosed(t, client, 2*time.Second)
		waitConnsEnded(t, s, 5*time.Second)
		if !strings.Contains(logs.String(), "malformed FastCGI stream") {
			t.Errorf("%s: log %q", name, logs)
		}
	}
}

func TestStreamedStdinBounded(t *testing.T) {
	noLeaks(t)
	const size = 20 << 20
	const buf = 64 << 10
	type result struct {
		n    int
		sum  uint32
		peak int
	}
	res := make(chan result, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		var out result
		p := make([]byte, 256<<10)
		for {
			n, err := r.Stdin.Read(p)
			for _, b := range p[:n] {
				out.sum = out.sum*31 + uint32(b)
			}
			out.n += n
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Error(err)
				break
			}
			if out.n%(1<<20) < n {
				time.Sleep(2 * time.Millisecond) // a slow reader
			}
		}
		out.peak = r.Stdin.(*stdinPipe).bufCap()
		res <- out
		return EndStatus{}
	}))
	s.StdinBuffer = buf
	client := serveConn(t, s)
	go func() {
		data := make([]byte, 65535)
		client.Write(append(beginRec(1, RoleResponder, false), rec(typeParams, 1, nil, 0)...))
		for sent := 0; sent < size; {
			n := min(len(data), size-sent)
			for i := range data[:n] {
				data[i] = byte(sent + i)
			}
			if _, err := client.Write(rec(typeStdin, 1, data[:n], 7)); err != nil {
				return
			}
			sent += n
		}
		client.Write(rec(typeStdin, 1, nil, 0))
	}()
	readResponse(t, client, 1)
	got := <-res
	var want uint32
	for i := 0; i < size; i++ {
		want = want*31 + uint32(byte(i))
	}
	if got.n != size || got.sum != want {
		t.Errorf("got %d bytes sum %x, want %d %x", got.n, got.sum, size, want)
	}
	if got.peak > buf+65535 || got.peak == 0 {
		t.Errorf("stdin buffer grew to %d, limit %d + one record", got.peak, buf)
	}
}

func TestLargeStdoutRecords(t *testing.T) {
	data := make([]byte, 3*65535+3395)
	for i := range data {
		data[i] = byte(i * 7)
	}
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		w.Write(data)
		w.Write([]byte("tail!"))
		io.WriteString(w.Stderr(), "warn")
		return EndStatus{}
	}))
	client := serveConn(t, s)
	client.Write(requestBytes(1, true, nil, nil))
	r := readResponse(t, client, 1)
	var lens []int
	var types []uint8
	for _, rc := range r.records {
		lens = append(lens, len(rc.content))
		types = append(types, rc.Type)
	}
	wantLens := []int{65535, 65535, 65535, 3395, 5, 4, 0, 0, 8}
	wantTypes := []uint8{6, 6, 6, 6, 6, 7, 6, 7, 3}
	if !slicesEqual(lens, wantLens) || !slicesEqual(types, wantTypes) {
		t.Errorf("records: lens %v types %v, want %v %v", lens, types, wantLens, wantTypes)
	}
	if !bytes.Equal(r.stdout, append(data, "tail!"...)) || string(r.stderr) != "warn" {
		t.Error("stdout or stderr content differs")
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHandlerPanic(t *testing.T) {
	s, logs := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus { panic("boom") }))
	client := serveConn(t, s)
	client.Write(requestBytes(1, true, nil, nil))
	r := readResponse(t, client, 1)
	if !strings.HasPrefix(string(r.stdout), "Status: 500") || r.end.AppStatus != 1 {
		t.Errorf("got %q %+v", r.stdout, r.end)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Error("panic not logged")
	}
}

func TestBeginForActiveIDIgnored(t *testing.T) {
	release := make(chan struct{})
	s, logs := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		<-release
		return EndStatus{AppStatus: 1}
	}))
	client := serveConn(t, s)
	client.Write(requestBytes(1, true, nil, nil))
	client.Write(beginRec(1, RoleResponder, true))
	time.Sleep(20 * time.Millisecond)
	close(release)
	if r := readResponse(t, client, 1); r.end.AppStatus != 1 {
		t.Errorf("end %+v", r.end)
	}
	if !eventually(func() bool { return strings.Contains(logs.String(), "in progress; ignored") }) {
		t.Errorf("log: %s", logs)
	}
}

func TestReadTimeoutSlowloris(t *testing.T) {
	noLeaks(t)
	for name, in := range map[string][]byte{
		"half a header": beginRec(1, RoleResponder, true)[:4],
		"half a record": rec(typeParams, 1, []byte("0123456789"), 0)[:12],
		"params never end": append(beginRec(1, RoleResponder, true),
			rec(typeParams, 1, encodePairs(Param{"A", "b"}), 0)...),
	} {
		s, logs := testServer(t, echoHandler())
		s.ReadTimeout = 150 * time.Millisecond
		client := serveConn(t, s)
		start := time.Now()
		client.Write(in)
		expectClosed(t, client, 2*time.Second)
		if d := time.Since(start); d < 140*time.Millisecond {
			t.Errorf("%s: closed after %v, before ReadTimeout", name, d)
		}
		if !strings.Contains(logs.String(), "in time") {
			t.Errorf("%s: log %q", name, logs)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	s, _ := testServer(t, echoHandler())
	s.IdleTimeout = 150 * time.Millisecond
	s.ReadTimeout = 20 * time.Millisecond // must not apply to a running handler
	client := serveConn(t, s)
	start := time.Now()
	client.Write(requestBytes(1, true, nil, nil))
	readResponse(t, client, 1)
	expectClosed(t, client, 2*time.Second)
	if d := time.Since(start); d < 140*time.Millisecond {
		t.Errorf("closed after %v", d)
	}
}

func TestSlowHandlerNotTimedOut(t *testing.T) {
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		io.ReadAll(r.Stdin)
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "done")
		return EndStatus{}
	}))
	s.IdleTimeout, s.ReadTimeout = 100*time.Millisecond, 50*time.Millisecond
	client := serveConn(t, s)
	client.Write(requestBytes(1, true, nil, nil))
	if r := readResponse(t, client, 1); string(r.stdout) != "done" {
		t.Errorf("stdout %q", r.stdout)
	}
}

func TestWriteTimeout(t *testing.T) {
	noLeaks(t)
	res := make(chan error, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		p := make([]byte, 1<<20)
		for {
			if _, err := w.Write(p); err != nil {
				res <- err
				return EndStatus{}
			}
		}
	}))
	s.WriteTimeout = 100 * time.Millisecond
	client := serveConn(t, s)
	client.Write(requestBytes(1, true, nil, nil))
	select {
	case err := <-res:
		if !errors.Is(err, ErrAborted) {
			t.Errorf("write error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocked write never failed")
	}
	waitConnsEnded(t, s, 5*time.Second) // closed after a failed write
	if !eventually(func() bool { return s.Active() == 0 }) {
		t.Errorf("Active = %d", s.Active())
	}
}

func TestStdinBeforeParamsEnd(t *testing.T) {
	s, _ := testServer(t, echoHandler())
	client := serveConn(t, s)
	in := beginRec(1, RoleResponder, true)
	in = append(in, rec(typeStdin, 1, []byte("x"), 0)...)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	in = append(in, rec(typeStdin, 1, nil, 0)...)
	client.Write(in)
	if r := readResponse(t, client, 1); !strings.HasPrefix(string(r.stdout), "Status: 400") {
		t.Errorf("stdout %q", r.stdout)
	}
}

// sendBody sends a request with a body of size bytes (a pattern) in full
// records, counting what the socket took in sent; it returns the sha256
// of the body once it was sent.
func sendBody(client net.Conn, size int, sent *atomic.Int64) <-chan []byte {
	sum := make(chan []byte, 1)
	go func() {
		h := sha256.New()
		data := make([]byte, 65535)
		client.Write(append(beginRec(1, RoleResponder, false), rec(typeParams, 1, nil, 0)...))
		for n := 0; n < size; {
			m := min(len(data), size-n)
			for i := range data[:m] {
				data[i] = byte((n + i) * 7)
			}
			h.Write(data[:m])
			if _, err := client.Write(rec(typeStdin, 1, data[:m], 0)); err != nil {
				return
			}
			n += m
			sent.Store(int64(n))
		}
		client.Write(rec(typeStdin, 1, nil, 0))
		sum <- h.Sum(nil)
	}()
	return sum
}

// sendAndCompare serves s with a 64 KiB STDIN buffer that spools to
// spool, sends a body of size bytes and checks that the handler, which
// puts the sha256 of what it read on res, got it all.
func sendAndCompare(t *testing.T, s *Server, spool string, size int, sent *atomic.Int64, res <-chan []byte) {
	t.Helper()
	s.StdinBuffer = 64 << 10
	s.SpoolDir = spool
	client := serveConn(t, s)
	want := sendBody(client, size, sent)
	readResponse(t, client, 1)
	if got := <-res; !bytes.Equal(got, <-want) {
		t.Fatal("the body read differs from what was sent")
	}
}

// spoolFiles counts this process's open files in dir (spool files are
// unlinked, but /proc still names them).
func spoolFiles(t *testing.T, dir string) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, fd := range fds {
		if l, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); strings.HasPrefix(l, dir+"/") {
			n++
		}
	}
	return n
}

// A handler that has not started its response holds the body back: the
// connection reader stops reading once the memory buffer is full, so the
// web server keeps the rest until the application reads it, and the body
// crosses the bridge in memory, never through a spool file.
func TestStdinHeldUntilRead(t *testing.T) {
	noLeaks(t)
	const size = 8 << 20
	var sent atomic.Int64
	res := make(chan []byte, 1)
	spool := t.TempDir()
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		time.Sleep(300 * time.Millisecond)
		if n := sent.Load(); n > size/2 {
			t.Errorf("the web server sent %d bytes while the handler read none", n)
		}
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Stdin.Read(buf)
			h.Write(buf[:n])
			if f := spoolFiles(t, spool); f != 0 {
				t.Errorf("%d spool files open while the body is held", f)
				break
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Errorf("reading: %v", err)
				break
			}
		}
		res <- h.Sum(nil)
		return EndStatus{}
	}))
	sendAndCompare(t, s, spool, size, &sent, res)
}

// A small body is read to its end before its handler reads any of it: the
// hold before the first read starts at stdinSmall, so a request waiting for
// a thread keeps its STDIN end, and its answer can go out whole with it.
func TestSmallStdinReadToItsEndUnread(t *testing.T) {
	noLeaks(t)
	ended := make(chan bool, 1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		select {
		case <-r.Stdin.(*stdinPipe).ended:
			ended <- true
		case <-time.After(2 * time.Second):
			ended <- false
		}
		io.Copy(io.Discard, r.Stdin)
		return EndStatus{}
	}))
	client := serveConn(t, s)
	client.Write(requestBytes(1, true, nil, make([]byte, 40<<10)))
	readResponse(t, client, 1)
	if !<-ended {
		t.Fatal("the reader held a 40 KiB body short of its end while the handler read none")
	}
}

// Closing the server ends a connection whose reader holds a body back,
// even while the handler goes on ignoring it.
func TestCloseWakesHeldReader(t *testing.T) {
	noLeaks(t)
	release := make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		<-release
		return EndStatus{}
	}))
	defer close(release)
	s.StdinBuffer = 64 << 10
	client := serveConn(t, s)
	var sent atomic.Int64
	sendBody(client, 8<<20, &sent)
	if !eventually(func() bool { return sent.Load() > 64<<10 }) {
		t.Fatal("the body did not start")
	}
	time.Sleep(100 * time.Millisecond) // the reader holds
	s.Close()
	waitConnsEnded(t, s, 3*time.Second)
}

// On a connection that carries two requests, neither body is held: a
// handler that reads nothing until the other request is answered does not
// stall it.
func TestStdinNotHeldWhileMultiplexed(t *testing.T) {
	noLeaks(t)
	const size = 1 << 20
	second := make(chan struct{})
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		if r.ID == 2 {
			defer close(second)
			return echoHandler()(w, r)
		}
		select {
		case <-second:
		case <-time.After(5 * time.Second):
			t.Error("request 2 stalled behind request 1's body")
		}
		n, err := io.Copy(io.Discard, r.Stdin)
		if err != nil || n != size {
			t.Errorf("read %d bytes, err %v", n, err)
		}
		return EndStatus{}
	}))
	s.StdinBuffer = 64 << 10
	client := serveConn(t, s)
	in := beginRec(1, RoleResponder, true)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	in = append(in, beginRec(2, RoleResponder, true)...)
	in = append(in, rec(typeParams, 2, nil, 0)...)
	for n := 0; n < size; n += 32 << 10 {
		in = append(in, rec(typeStdin, 1, make([]byte, 32<<10), 0)...)
	}
	in = append(in, rec(typeStdin, 2, nil, 0)...)
	in = append(in, rec(typeStdin, 1, nil, 0)...)
	go client.Write(in)
	readResponses(t, client, 2, 1)
}

// Once a response has started, the connection reader never waits for the
// handler: nginx sends the whole body before it reads any response, so the
// rest of the body is spooled (the memory buffer stays at its limit) and
// the handler reads all of it afterwards.
func TestStdinSpooledOnceResponding(t *testing.T) {
	noLeaks(t)
	const size = 8 << 20
	var sent atomic.Int64
	res := make(chan []byte, 1)
	spool := t.TempDir()
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		// Write waits for the end of STDIN, which comes only if the reader
		// reads on without the handler.
		io.WriteString(w, "Status: 200 OK\r\n\r\n")
		h := sha256.New()
		n, err := io.Copy(h, r.Stdin)
		if err != nil || n != size {
			t.Errorf("read %d bytes, err %v", n, err)
		}
		peak := r.Stdin.(*stdinPipe).bufCap()
		if peak > 64<<10+65535 {
			t.Errorf("memory buffer grew to %d bytes", peak)
		}
		res <- h.Sum(nil)
		return EndStatus{}
	}))
	sendAndCompare(t, s, spool, size, &sent, res)
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Fatalf("spool files left behind: %v", ents)
	}
}

// A responder that writes while STDIN is still arriving: nothing reaches
// the web server before STDIN has ended (nginx stops sending the body once
// a response starts), and everything arrives after.
func TestResponseHeldUntilStdinEnds(t *testing.T) {
	noLeaks(t)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		io.ReadFull(r.Stdin, make([]byte, 1000))
		io.WriteString(w, "Status: 200 OK\r\n\r\nearly")
		io.Copy(io.Discard, r.Stdin)
		return EndStatus{}
	}))
	client := serveConn(t, s)
	in := beginRec(1, RoleResponder, false)
	in = append(in, rec(typeParams, 1, nil, 0)...)
	in = append(in, rec(typeStdin, 1, make([]byte, 1000), 0)...)
	client.Write(in)
	client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _ := client.Read(make([]byte, 1)); n > 0 {
		t.Fatal("STDOUT sent before STDIN ended")
	}
	client.SetReadDeadline(time.Time{})
	client.Write(append(rec(typeStdin, 1, make([]byte, 5000), 0), rec(typeStdin, 1, nil, 0)...))
	if r := readResponse(t, client, 1); string(r.stdout) != "Status: 200 OK\r\n\r\nearly" {
		t.Fatalf("stdout %q", r.stdout)
	}
}

// WriteWithHead sends a held final block, the head and the body in that
// order, in one write; a body longer than a record is split.
func TestWriteWithHead(t *testing.T) {
	body := bytes.Repeat([]byte("b"), maxContent+10)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		w.(FinalWriter).WriteFinal([]byte("held|"))
		if n, err := w.(HeadWriter).WriteWithHead([]byte("head|"), body); n != len(body) || err != nil {
			t.Errorf("WriteWithHead: %d, %v", n, err)
		}
		return EndStatus{}
	}))
	client := serveConn(t, s)
	client.Write(requestBytes(1, true, nil, nil))
	if resp := readResponse(t, client, 1); string(resp.stdout) != "held|head|"+string(body) {
		t.Fatalf("stdout %d bytes, starting %q", len(resp.stdout), resp.stdout[:min(20, len(resp.stdout))])
	}
}

// WriteFinal holds a small last block for the closing write; a later Write
// sends it first, and a block too big to hold goes out at once.
func TestWriteFinal(t *testing.T) {
	release := make(chan struct{})
	big := bytes.Repeat([]byte("z"), maxFinal+1)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		f := w.(FinalWriter)
		switch r.Params[0].Value {
		case "/held":
			f.WriteFinal([]byte("held"))
			<-release
		case "/order":
			f.WriteFinal([]byte("a"))
			w.Write([]byte("b"))
			f.WriteFinal([]byte("c"))
		case "/big":
			f.WriteFinal(big)
			<-release
		}
		return EndStatus{}
	}))
	client := serveConn(t, s)

	client.Write(requestBytes(1, true, []Param{{"SCRIPT_NAME", "/held"}}, nil))
	client.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := readRec(t, client); err == nil {
		t.Fatal("a held final block was sent before the handler returned")
	}
	client.SetReadDeadline(time.Time{})
	release <- struct{}{}
	if resp := readResponse(t, client, 1); string(resp.stdout) != "held" || len(resp.records) != 3 {
		t.Fatalf("held: %q in %d records", resp.stdout, len(resp.records))
	}

	client.Write(requestBytes(2, true, []Param{{"SCRIPT_NAME", "/order"}}, nil))
	if resp := readResponse(t, client, 2); string(resp.stdout) != "abc" {
		t.Fatalf("order: %q", resp.stdout)
	}

	client.Write(requestBytes(3, true, []Param{{"SCRIPT_NAME", "/big"}}, nil))
	rc, err := readRec(t, client) // before the handler returns
	if err != nil || rc.Type != typeStdout || len(rc.content) == 0 {
		t.Fatalf("big final block not sent at once: %+v %v", rc.header, err)
	}
	got := len(rc.content)
	release <- struct{}{}
	resp := readResponse(t, client, 3)
	if got+len(resp.stdout) != len(big) {
		t.Fatalf("big: %d bytes", got+len(resp.stdout))
	}
}

// EndWith ends a request from another goroutine, its two parts in records
// of their own, and refuses (sending nothing) until STDIN has ended.
func TestEndWith(t *testing.T) {
	head := []byte("Status: 200 OK\r\n\r\n")
	body := bytes.Repeat([]byte("0123456789"), 6000)
	ended := make(chan bool, 2)
	s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
		e := w.(Ender)
		if r.Params[0].Value == "/early" {
			ok, _ := e.EndWith(head, body) // STDIN goes on: refused
			ended <- ok
		}
		io.Copy(io.Discard, r.Stdin)
		done := make(chan struct{})
		go func() { // as the worker's reader does
			ok, err := e.EndWith(head, body)
			ended <- ok && err == nil
			close(done)
		}()
		<-done
		if _, err := w.Write([]byte("late")); !errors.Is(err, errAfterEnd) {
			t.Errorf("write after EndWith: %v", err)
		}
		return EndStatus{AppStatus: 7} // unused: the request has ended
	}))
	client := serveConn(t, s)
	for i, path := range []string{"/now", "/early"} {
		id := uint16(i + 1)
		in := beginRec(id, RoleResponder, true)
		in = append(in, rec(typeParams, id, encodePairs(Param{"SCRIPT_NAME", path}), 0)...)
		in = append(in, rec(typeParams, id, nil, 0)...)
		in = append(in, rec(typeStdin, id, []byte("x"), 0)...)
		client.Write(in)
		if path == "/early" && <-ended {
			t.Fatal("EndWith before the end of STDIN")
		}
		client.Write(rec(typeStdin, id, nil, 0))
		resp := readResponse(t, client, id)
		if !<-ended || !bytes.Equal(resp.stdout, append(append([]byte{}, head...), body...)) || resp.end.AppStatus != 0 {
			t.Fatalf("%s: %d bytes, end %+v", path, len(resp.stdout), resp.end)
		}
	}
}
