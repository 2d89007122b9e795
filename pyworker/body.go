package pyworker

import (
	"errors"
	"io"
)

// SpliceBody is a Call.Body that can move its bytes into the worker's pipe
// by splice(2), without their passing through the bridge's memory.
type SpliceBody interface {
	io.Reader
	// SpliceBody moves up to max bytes of the body: it calls move once
	// with a descriptor that holds n ready bytes of it (valid only during
	// the call), and returns what move moved, or move's error, or the
	// body's. Nothing moved and no error: the next bytes are to be Read.
	SpliceBody(max int, move func(fd uintptr, n int) (int, error)) (int, error)
}

// pumpBody sends c.Body to the worker as far as the worker's credit allows,
// so memory stays bounded whatever the upload size. The first bodyWindow
// bytes go unasked: a small POST costs no round trip.
func (w *Worker) pumpBody(s *stream, c *Call) {
	buf := make([]byte, headerSize+maxBody)
	sb, _ := c.Body.(SpliceBody)
	var move func(fd uintptr, n int) (int, error)
	if sb != nil && w.splicer != nil {
		move = func(fd uintptr, n int) (int, error) { return w.sendSpliced(s.id, fd, n, buf) }
	}
	for {
		n := s.takeCredit(maxBody, w.lost)
		if n == 0 {
			return
		}
		if move != nil {
			m, err := sb.SpliceBody(n, move)
			if err != nil {
				s.giveBack(n - m)
				c.Log.Warn().Err(err).Int("pid", w.pid).Msg("reading the request body failed")
				putHeader(buf, tBody, fErr, s.id, 0)
				_ = w.send(buf[:headerSize])
				return
			}
			if m > 0 {
				s.giveBack(n - m)
				continue
			}
		}
		m, err := c.Body.Read(buf[headerSize : headerSize+n])
		s.giveBack(n - m)
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
