package bridge

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// FuzzNameValues checks that the incremental scanner, fed in three
// arbitrary pieces, agrees with the one-shot decoder.
func FuzzNameValues(f *testing.F) {
	f.Add(encodePairs(Param{"A", "b"}, Param{"LONG", string(make([]byte, 300))}), uint16(1), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		a := min(int(cut1), len(data))
		b := min(a+int(cut2), len(data))
		s := pairScanner{maxBytes: 1 << 20, maxCount: 1000}
		var err error
		for _, part := range [][]byte{data[:a], data[a:b], data[b:]} {
			if err = s.feed(part); err != nil {
				break
			}
		}
		ps, derr := decodePairs(string(data), nil)
		if err != nil {
			if !errors.Is(err, errParamsTooLarge) && !errors.Is(err, errTooManyParams) {
				t.Fatalf("scanner error %v", err)
			}
			return
		}
		if s.complete() != (derr == nil) {
			t.Fatalf("scanner complete=%v, decoder error %v", s.complete(), derr)
		}
		if derr != nil {
			return
		}
		var n int64
		for _, p := range ps {
			n += int64(len(p.Name) + len(p.Value))
		}
		if s.count != len(ps) || s.bytes != n {
			t.Fatalf("scanner counted %d pairs %d bytes, decoder %d %d", s.count, s.bytes, len(ps), n)
		}
		again, err := decodePairs(string(encodePairs(ps...)), nil)
		if err != nil || len(again) != len(ps) {
			t.Fatalf("re-encoding: %v", err)
		}
		for i := range ps {
			if again[i] != ps[i] {
				t.Fatalf("pair %d changed by re-encoding", i)
			}
		}
	})
}

// FuzzRecordReader compares the record reader, with a buffer small enough
// to use both of its paths, against a plain reading of the framing.
func FuzzRecordReader(f *testing.F) {
	f.Add(append(rec(typeParams, 1, []byte("abc"), 5), rec(typeStdin, 1, make([]byte, 40), 0)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		rr := &recordReader{br: bufio.NewReaderSize(bytes.NewReader(data), 16), nc: noDeadlines{}}
		rest := data
		for {
			if rr.br.Buffered() == 0 {
				err := rr.await()
				if len(rest) == 0 {
					if err != io.EOF {
						t.Fatalf("at end: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("await with %d bytes left: %v", len(rest), err)
				}
			}
			h, content, err := rr.next()
			if rest[0] != 1 {
				if !errors.Is(err, errFraming) {
					t.Fatalf("version %d accepted: %v", rest[0], err)
				}
				return
			}
			if len(rest) < 8 {
				if !errors.Is(err, errFraming) {
					t.Fatalf("short header: %v", err)
				}
				return
			}
			cl := int(binary.BigEndian.Uint16(rest[4:]))
			total := 8 + cl + int(rest[6])
			if len(rest) < total {
				if !errors.Is(err, errFraming) {
					t.Fatalf("truncated record: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("valid record refused: %v", err)
			}
			if h.Type != rest[1] || h.ID != binary.BigEndian.Uint16(rest[2:]) || !bytes.Equal(content, rest[8:8+cl]) {
				t.Fatalf("record %+v differs", h)
			}
			rest = rest[total:]
		}
	})
}

// noDeadlines is the connection of a recordReader that reads from memory.
type noDeadlines struct{ net.Conn }

func (noDeadlines) SetReadDeadline(time.Time) error { return nil }

// FuzzConn feeds arbitrary bytes as a whole connection: the server must
// neither panic nor hang, and must release every request.
func FuzzConn(f *testing.F) {
	f.Add(requestBytes(1, true, []Param{{"A", "b"}}, []byte("body")))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
			b, _ := io.ReadAll(io.LimitReader(r.Stdin, 1<<16))
			w.Write(b)
			w.Stderr().Write(b[:min(len(b), 3)])
			return EndStatus{AppStatus: uint32(len(r.Params))}
		}))
		fuzzLimits(s)
		client := serveConn(t, s)
		go func() {
			client.Write(data)
			client.CloseWrite()
		}()
		expectAllEnded(t, s, client)
	})
}

// fuzzLimits makes a fuzzed server give up soon and hold little.
func fuzzLimits(s *Server) {
	s.ReadTimeout, s.IdleTimeout, s.WriteTimeout = 100*time.Millisecond, 100*time.Millisecond, time.Second
	s.MaxParams, s.MaxParamsBytes, s.StdinBuffer = 20, 4096, 1024
}

// expectAllEnded reads what the server sends until it closes client, and
// checks that the connection ended with every request.
func expectAllEnded(t *testing.T, s *Server, client net.Conn) {
	t.Helper()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, client); err != nil && !isReset(err) {
		t.Fatalf("reading the server's output: %v", err)
	}
	waitConnsEnded(t, s, 5*time.Second)
	for deadline := time.Now().Add(5 * time.Second); s.Active() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests still active", s.Active())
		}
	}
}

func isReset(err error) bool {
	var ne interface{ Timeout() bool }
	return !(errors.As(err, &ne) && ne.Timeout())
}

// FuzzLoan gives arbitrary bytes back from a loan, as a broken or hostile
// borrower would, with arbitrary bytes after them on the connection: the
// reader parses them as it would the web server's, and the connection
// still ends, every request with it.
func FuzzLoan(f *testing.F) {
	f.Add(rec(typeStdin, 1, nil, 0), []byte{})
	f.Add(rec(typeStdin, 1, []byte("rest"), 3), rec(typeStdin, 1, nil, 0))
	f.Add([]byte{1, 5, 0, 1, 0, 9}, []byte{0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 5, 0, 1, 0, 0, 0, 0})
	f.Add(append(rec(typeStdin, 1, nil, 0), requestBytes(2, true, nil, []byte("two"))...), []byte{})
	f.Fuzz(func(t *testing.T, leftover, tail []byte) {
		wanted := make(chan struct{})
		var first sync.Once // the bytes given back may begin another request 1
		s, _ := testServer(t, HandlerFunc(func(w ResponseWriter, r *Request) EndStatus {
			l := r.Stdin.(Lender)
			if r.ID == 1 {
				l.WantLoan()
				first.Do(func() { close(wanted) })
			}
			var got []byte
			buf := make([]byte, 4096)
			for len(got) < 1<<16 {
				n, err := r.Stdin.Read(buf)
				got = append(got, buf[:n]...)
				if errors.Is(err, ErrLent) {
					if loan := l.TakeLoan(); loan != nil {
						l.Repay(leftover, false, false)
					}
					continue
				}
				if err != nil {
					break
				}
			}
			w.Write(got)
			return EndStatus{}
		}))
		fuzzLimits(s)
		client := serveConn(t, s)
		go func() {
			start := beginRec(1, RoleResponder, true)
			start = append(start, rec(typeParams, 1, nil, 0)...)
			client.Write(append(start, rec(typeStdin, 1, []byte("a"), 0)...))
			<-wanted
			client.Write(append(rec(typeStdin, 1, []byte("b"), 0), tail...)) // lent here
			client.CloseWrite()
		}()
		expectAllEnded(t, s, client)
	})
}
