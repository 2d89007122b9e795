package pyworker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// Lending. A large request body crosses the bridge twice (read from the web
// server, written into the pipe) and the worker's pipe once more. When the
// body's source can lend the web server's connection (Lender), the worker
// reads the rest of the body's STDIN records from it itself and gives it
// back (RETURN) before it answers or when the request ends. The descriptor
// travels as a datagram on the worker's fd 6 (Config.Lend), with the
// stream's id so that concurrent loans cannot be mixed up.
//
// The worker then holds the connection of the web server, which may carry
// other requests afterwards: only a caller whose every request goes to
// workers of one identity may enable it.

// ErrLent is what a Lender's Read returns when the rest of the body is to
// be read through its Loan.
var ErrLent = errors.New("pyworker: request body lent")

// Loan is a web server's connection lent for the rest of a request body.
type Loan struct {
	FD     int           // a descriptor of it, open until Repay
	Prefix []byte        // bytes read from it and not parsed: records begin at its first byte
	ID     uint16        // the FastCGI request whose STDIN records follow
	Idle   time.Duration // the body's idle timeout; 0: none
}

// Lender is a Call.Body that can lend its source (see bridge.Lender).
type Lender interface {
	// WantLoan asks for the source rather than reads; false: it never lends.
	WantLoan() bool
	// TakeLoan returns the loan after Read failed with ErrLent.
	TakeLoan() *Loan
	// Repay gives the loan back: the bytes read from it and not consumed,
	// n body bytes read through it; broken: its state is unknown; stalled:
	// the body sent nothing for its idle timeout.
	Repay(leftover []byte, n int64, broken, stalled bool)
}

// repayment is a RETURN frame's content.
type repayment struct {
	n        int64
	leftover []byte
	stalled  bool
}

// newLendSocket makes the pair the worker's fd 6 is one end of.
func newLendSocket() (parent, child *os.File, err error) {
	// As os.Pipe where pipe2 is missing: no fork between the two calls.
	syscall.ForkLock.RLock()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fds[0])
		unix.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("pyworker: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "lend"), os.NewFile(uintptr(fds[1]), "lend-worker"), nil
}

// lend sends the rest of s's body through l's loan and waits for it back;
// false: the worker was lost with it.
func (w *Worker) lend(s *stream, l Lender) bool {
	loan := l.TakeLoan()
	if loan == nil {
		return true
	}
	back := make(chan repayment, 1)
	w.mu.Lock()
	w.loans[s.id] = back
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.loans, s.id)
		w.mu.Unlock()
	}()
	if err := w.passConn(s.id, loan.FD); err != nil {
		w.log.Debug().Err(err).Msg("connection not lent")
		l.Repay(loan.Prefix, 0, false, false)
		return true
	}
	frame := make([]byte, headerSize+6+len(loan.Prefix))
	putHeader(frame, tLend, 0, s.id, 6+len(loan.Prefix))
	binary.BigEndian.PutUint16(frame[headerSize:], loan.ID)
	binary.BigEndian.PutUint32(frame[headerSize+2:], uint32(min(loan.Idle.Milliseconds(), 1<<32-1)))
	copy(frame[headerSize+6:], loan.Prefix)
	if w.send(frame) == nil {
		if r, ok := w.awaitRepayment(s, back); ok {
			w.log.Debug().Int64("bytes", r.n).Bool("stalled", r.stalled).Msg("body read from the lent connection")
			l.Repay(r.leftover, r.n, false, r.stalled)
			return true
		}
	}
	l.Repay(nil, 0, true, false)
	return false
}

// awaitRepayment waits for the RETURN of s's loan. The worker gives a loan
// back before it answers and when its request ends, and at once for a
// request it has finished; once Serve returns (an application that did not
// stop after an abort), it is given AbortWait more.
func (w *Worker) awaitRepayment(s *stream, back <-chan repayment) (repayment, bool) {
	select {
	case r := <-back:
		return r, true
	case <-w.lost:
		return repayment{}, false
	case <-s.finished:
	}
	t := time.NewTimer(w.cfg.AbortWait)
	defer t.Stop()
	select {
	case r := <-back:
		return r, true
	case <-w.lost:
	case <-t.C:
		w.log.Warn().Msg("application kept a lent connection after its request; closing the connection")
	}
	return repayment{}, false
}

// passConn sends a datagram with id and a duplicate of fd on the lend
// socket; it never waits (a worker that does not read its socket gets no
// loan).
func (w *Worker) passConn(id uint32, fd int) error {
	if w.lendSock == nil {
		return errors.New("lending is off")
	}
	sc, err := w.lendSock.SyscallConn()
	if err != nil {
		return err
	}
	var sendErr error
	var msg [4]byte
	binary.BigEndian.PutUint32(msg[:], id)
	err = sc.Control(func(sock uintptr) {
		sendErr = rawio.SendFD(int(sock), msg[:], fd)
	})
	if err != nil {
		return err
	}
	return sendErr
}

// repaid hands a RETURN frame to the loan it ends.
func (w *Worker) repaid(id uint32, flags uint8, data []byte) {
	if len(data) < 8 {
		w.log.Error().Msg("short RETURN frame; killing the worker")
		w.Kill()
		return
	}
	w.mu.Lock()
	back := w.loans[id]
	w.mu.Unlock()
	if back == nil {
		return
	}
	select {
	case back <- repayment{n: int64(binary.BigEndian.Uint64(data)), leftover: data[8:], stalled: flags&fStalled != 0}:
	default: // a second RETURN for one loan
	}
}
