package bridge

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// zeroPad supplies record padding; it is only ever read.
var zeroPad [8]byte

// connWriter serialises the records of multiplexed requests on one
// connection. Each call is one writev of whole records, so records of
// different requests never interleave inside each other.
type connWriter struct {
	mu      sync.Mutex
	nc      net.Conn
	out     rawio.Writer // nc, written by direct system calls
	timeout time.Duration
	hdrs    []byte                // reusable headers
	iov     [][]byte              // reusable vector
	end     [3*headerLen + 8]byte // closing records, built under mu: empty STDOUT and STDERR, END_REQUEST
	err     error                 // first write failure; later writes fail at once
	onFail  func()                // called once when a write fails
	lentFD  int                   // while the connection is lent, written here (nc is closed); else -1
}

// writeStream sends the parts, one after the other, as records of typ
// (up to 65535 bytes each) in one writev, without joining them.
func (w *connWriter) writeStream(typ uint8, id uint16, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if n == 0 {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.hdrs = w.hdrs[:0]
	iov := w.iov[:0]
	for _, p := range parts {
		iov = w.recordsLocked(iov, typ, id, p)
	}
	w.iov = iov[:0]
	return w.flushLocked(iov)
}

// recordsLocked appends p to iov as records of typ, with their headers
// appended to w.hdrs (a reallocation leaves the earlier ones where iov
// points).
func (w *connWriter) recordsLocked(iov [][]byte, typ uint8, id uint16, p []byte) [][]byte {
	for rest := p; len(rest) > 0; {
		chunk := rest[:min(len(rest), maxContent)]
		rest = rest[len(chunk):]
		w.hdrs = append(w.hdrs, zeroPad[:headerLen]...)
		h := w.hdrs[len(w.hdrs)-headerLen:]
		pad := putHeader(h, typ, id, len(chunk))
		iov = append(iov, h, chunk)
		if pad > 0 {
			iov = append(iov, zeroPad[:pad])
		}
	}
	return iov
}

// writeEnd closes a request in one write: the last STDOUT bytes (head and
// body, either may be empty), the empty STDOUT record, an empty STDERR one
// when stderr was used, and END_REQUEST.
func (w *connWriter) writeEnd(id uint16, head, body []byte, stderr bool, st EndStatus) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	b := w.end[:]
	putHeader(b, typeStdout, id, 0)
	n := headerLen
	if stderr {
		putHeader(b[n:], typeStderr, id, 0)
		n += headerLen
	}
	n += putEndRequest(b[n:], id, st)
	w.hdrs = w.hdrs[:0]
	iov := w.recordsLocked(w.iov[:0], typeStdout, id, head)
	iov = w.recordsLocked(iov, typeStdout, id, body)
	iov = append(iov, b[:n])
	w.iov = iov[:0]
	return w.flushLocked(iov)
}

// putEndRequest encodes an END_REQUEST record and returns its length.
func putEndRequest(b []byte, id uint16, st EndStatus) int {
	putHeader(b, typeEndRequest, id, 8)
	binary.BigEndian.PutUint32(b[8:12], st.AppStatus)
	b[12] = st.ProtocolStatus
	b[13], b[14], b[15] = 0, 0, 0
	return headerLen + 8
}

// writeRaw sends already framed records.
func (w *connWriter) writeRaw(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	iov := append(w.iov[:0], b)
	w.iov = iov[:0]
	return w.flushLocked(iov)
}

func (w *connWriter) flushLocked(iov [][]byte) error {
	if w.lentFD >= 0 {
		err := writeFD(w.lentFD, iov, w.timeout)
		clear(iov)
		if err != nil {
			return w.failLocked(err)
		}
		return nil
	}
	if w.timeout > 0 {
		if err := w.nc.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
			return w.failLocked(err)
		}
	}
	_, err := w.out.WriteVec(iov)
	clear(iov) // drop references to the caller's data
	if err != nil {
		return w.failLocked(err)
	}
	return nil
}

// failLocked records a write failure: the stream is now unusable, since
// a record may have been cut in half.
func (w *connWriter) failLocked(err error) error {
	w.err = fmt.Errorf("%w: write to web server: %v", ErrAborted, err)
	if w.onFail != nil {
		w.onFail()
	}
	return w.err
}

// unlend writes to nc again after a loan; nil: the connection is gone, and
// later writes fail.
func (w *connWriter) unlend(nc net.Conn, out rawio.Writer) {
	w.mu.Lock()
	w.lentFD = -1
	if nc != nil {
		w.nc, w.out = nc, out
	} else if w.err == nil {
		w.err = ErrAborted
	}
	w.mu.Unlock()
}

// abort makes later writes fail with ErrAborted.
func (w *connWriter) abort() {
	w.mu.Lock()
	if w.err == nil {
		w.err = ErrAborted
	}
	w.mu.Unlock()
}

// writeFD writes iov on a descriptor outside Go's poller (a lent
// connection's, which the borrower may have made blocking), waiting in
// poll(2) when it is full: rare (an error page while the worker holds the
// connection), so a thread may block.
func writeFD(fd int, iov [][]byte, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for len(iov) > 0 {
		n, err := unix.SendmsgBuffers(fd, iov, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		switch {
		case err == unix.EAGAIN:
			wait := -1
			if timeout > 0 {
				left := time.Until(deadline)
				if left <= 0 {
					return os.ErrDeadlineExceeded
				}
				wait = int(left/time.Millisecond) + 1
			}
			_, err = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, wait)
			if err != nil && err != unix.EINTR {
				return os.NewSyscallError("poll", err)
			}
			continue
		case err == unix.EINTR:
			continue
		case err != nil:
			return os.NewSyscallError("writev", err)
		}
		iov = rawio.Consume(iov, n)
	}
	return nil
}
