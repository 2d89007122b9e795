package pyworker

import (
	"errors"
	"io"
)

// pumpBody sends c.Body to the worker as far as the worker's credit allows,
// so memory stays bounded whatever the upload size. The first bodyWindow
// bytes go unasked: a small POST costs no round trip. A body whose source
// lends its connection (Lender) has its rest read by the worker (lend).
func (w *Worker) pumpBody(s *stream, c *Call) {
	buf := make([]byte, headerSize+maxBody)
	lender, _ := c.Body.(Lender)
	if lender != nil && (w.lendSock == nil || !lender.WantLoan()) {
		lender = nil
	}
	for {
		n := s.takeCredit(maxBody, w.lost)
		if n == 0 {
			return
		}
		m, err := c.Body.Read(buf[headerSize : headerSize+n])
		s.giveBack(n - m)
		if errors.Is(err, ErrLent) {
			if lender != nil {
				if !w.lend(s, lender) {
					return
				}
				continue
			}
			if l, ok := c.Body.(Lender); ok {
				// Offered to a worker that cannot borrow (the caller asked
				// before it knew which worker): back at once; reads go on.
				if loan := l.TakeLoan(); loan != nil {
					l.Repay(loan.Prefix, 0, false, false)
				}
				continue
			}
		}
		var flags uint8
		switch {
		case errors.Is(err, io.EOF):
			flags = fEOF
		case err != nil:
			flags = fErr
			c.Log.Warn().Err(err).Int("pid", w.pid).Msg("reading the request body failed")
		case m == 0:
			continue
		}
		putHeader(buf, tBody, flags, s.id, m)
		if w.send(buf[:headerSize+m]) != nil || flags != 0 {
			return
		}
	}
}
