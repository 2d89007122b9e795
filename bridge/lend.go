package bridge

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// Lending the socket. Where the connection reader would hold for a body
// whose reader splices (Body.Splice: the worker pump does), it lends the
// socket to that reader instead of waiting: the pump reads each record
// header itself and splices the STDIN content from the socket, through a
// pipe, into the worker's pipe, so that an upload crosses the bridge as
// page references instead of two copies through its memory
// (bench/README.md: the bridge's CPU per 10 MiB upload). While the socket
// is lent, a Read with nothing kept returns nothing: the next bytes are
// Splice's. The lend ends (the socket goes back to the reader, with where
// the stream stands) at the first record that is not this request's STDIN
// content, and whenever the reader must read on: the response starts,
// Buffer wants more than is kept, the body is closed or fails, the
// connection closes. A pump that waits for the socket then is woken by a
// deadline in the past.

// lend is the state of a socket lent to one request's body (stdinPipe.lent).
type lend struct {
	id   uint16
	nc   net.Conn
	rc   syscall.RawConn
	wait time.Duration // how long the web server may leave STDIN waiting (the reader's own limit)

	// Where the stream stands, and what the reader resumes with. Guarded
	// by the pipe's mu, except while busy (only the body's reader then).
	rem, pad int                   // content and padding of the current STDIN record still to come
	hb       [255 + headerLen]byte // the padding and header that follow it,
	have     int                   // of which hb[:have] are read
	end      error                 // why the lend must end: errLendEnded, or the socket's error (a deadline)
	expired  bool                  // the web server sent nothing for wait: the reader gives up the connection
	busy     bool                  // the body's reader is using the socket
	back     bool                  // the reader wants it back, or has it

	// The content of one BODY frame gathers in a pipe of the lend's own:
	// only then is its length known, and a frame as large as the worker's
	// credit allows costs the worker less than one per record.
	pr, pw    uintptr // 0: not made yet
	max, held int     // what this frame may take, and has
	gather    func(fd uintptr) bool
}

// gatherPipe is the size asked for a lend's pipe: room for a frame of the
// worker pump's (64 KiB) even in the pages of small records.
const gatherPipe = 256 << 10

// errLendEnded: the next record is not this request's STDIN content (its
// header waits in hb for the reader), or the stream ended.
var errLendEnded = errors.New("lend ended")

func newLend(id uint16, nc net.Conn, rc syscall.RawConn, wait time.Duration) *lend {
	l := &lend{id: id, nc: nc, rc: rc, wait: wait}
	l.gather = l.gatherFrom
	return l
}

// splice gathers up to max bytes of STDIN content from the socket, across
// records, as far as they have come (waiting only for the first), and
// passes them on with move. It returns move's result; why the lend must
// end, it leaves in l.end.
func (l *lend) splice(max int, move func(fd uintptr, n int) (int, error)) (int, error) {
	if l.pw == 0 {
		r, w, err := rawio.Pipe(gatherPipe)
		if err != nil {
			l.end = err
			return 0, nil
		}
		l.pr, l.pw = r, w
	}
	l.max, l.held = max, 0
	if err := l.rc.Read(l.gather); err != nil && l.end == nil {
		l.end = err // a deadline, or the socket closed
	}
	if l.held == 0 {
		return 0, nil
	}
	return move(l.pr, l.held)
}

// gatherFrom is the poller's callback: false asks it to wait for the
// socket, which it does only while nothing is gathered.
func (l *lend) gatherFrom(fd uintptr) bool {
	for l.held < l.max {
		if l.rem == 0 {
			want := l.pad + headerLen
			n, err := rawio.ReadNow(fd, l.hb[l.have:want])
			l.have += n
			if err != nil {
				return l.stop(err)
			}
			if l.have < want {
				continue
			}
			h, err := parseHeader(l.hb[l.pad:want])
			if err != nil || h.Type != typeStdin || h.ID != l.id || h.ContentLen == 0 {
				l.end = errLendEnded
				return true
			}
			l.rem, l.pad, l.have = int(h.ContentLen), int(h.PadLen), 0
		}
		n, err := rawio.SpliceNow(fd, l.pw, min(l.rem, l.max-l.held))
		l.held += n
		l.rem -= n
		if err != nil {
			return l.stop(err)
		}
	}
	return true
}

// stop ends a gather at err.
func (l *lend) stop(err error) bool {
	switch {
	case errors.Is(err, rawio.ErrNotReady):
		return l.held > 0 // nothing yet, or the frame's pipe is full
	case errors.Is(err, io.EOF):
		l.end = errLendEnded // the reader sees the end
	default:
		l.end = err
	}
	return true
}

// close releases the lend's pipe; the lend is over.
func (l *lend) close() {
	if l.pw != 0 {
		rawio.Close(l.pr)
		rawio.Close(l.pw)
		l.pr, l.pw = 0, 0
	}
}

// kick ends a wait of the body's reader on the socket.
func (l *lend) kick() { _ = l.nc.SetReadDeadline(aLongTimeAgo) }

var aLongTimeAgo = time.Unix(1, 0)

// lendable reports whether the reader can lend for r now: with the record
// buffer empty, or holding only the start of one STDIN record of r, whose
// content then goes to r's memory so that the socket is at a point the
// body's reader can go on from.
func (c *conn) lendable(r *request) (*lend, bool) {
	br := c.rr.br
	n := br.Buffered()
	var h header
	if n > 0 {
		if n < headerLen {
			return nil, false
		}
		hb, _ := br.Peek(headerLen)
		var err error
		h, err = parseHeader(hb)
		if err != nil || h.Type != typeStdin || h.ID != r.ID || h.ContentLen == 0 || n >= headerLen+int(h.ContentLen)+int(h.PadLen) {
			return nil, false
		}
	}
	rc := rawio.SyscallConn(c.nc)
	if rc == nil {
		return nil, false
	}
	l := newLend(r.ID, c.nc, rc, c.srv.idleTimeout())
	if n == 0 {
		return l, true
	}
	total := headerLen + int(h.ContentLen) + int(h.PadLen)
	b, _ := br.Peek(n)
	k := min(n-headerLen, int(h.ContentLen))
	r.stdin.keep(b[headerLen : headerLen+k])
	l.rem, l.pad = int(h.ContentLen)-k, total-n-(int(h.ContentLen)-k)
	_, _ = br.Discard(n)
	return l, true
}

// hold holds or lends for r, as its body calls for, once r has had STDIN
// content. false: the web server left STDIN waiting too long during a
// lend, and the connection is given up.
func (c *conn) hold(r *request) bool {
	lends, holds := r.stdin.next()
	if lends {
		l, ok := c.lendable(r)
		if !ok {
			return true // it lends after one of the records buffered
		}
		r.stdin.lendHold(l)
		if l.expired {
			c.logReadError(os.ErrDeadlineExceeded, false)
			return false
		}
		c.src.resume(l)
		return true
	}
	if holds {
		r.stdin.hold()
	}
	return true
}

// src is what the record buffer reads: bytes read already for it (by a
// body's reader during a lend), then the socket.
type src struct {
	pre  []byte
	buf  [headerLen]byte
	skip int // padding of a record to drop first
	in   io.Reader
}

func (s *src) Read(p []byte) (int, error) {
	for s.skip > 0 {
		n, err := s.in.Read(s.buf[:min(s.skip, len(s.buf))])
		s.skip -= n
		if err != nil {
			return 0, err
		}
	}
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	return s.in.Read(p)
}

// resume sets where the reader goes on after a lend: in the middle of a
// STDIN record (its rest comes as a record of its own), or after the
// padding and header bytes the body's reader read.
func (s *src) resume(l *lend) {
	if l.rem > 0 {
		putHeader(s.buf[:], typeStdin, l.id, l.rem)
		s.buf[6] = uint8(l.pad)
		s.pre = s.buf[:]
		return
	}
	skipped := min(l.have, l.pad)
	s.skip = l.pad - skipped
	n := copy(s.buf[:], l.hb[skipped:l.have])
	s.pre = s.buf[:n]
}
