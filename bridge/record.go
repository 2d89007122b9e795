package bridge

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Record types and constants of the FastCGI 1.0 specification.
const (
	fcgiVersion = 1
	headerLen   = 8
	maxContent  = 65535

	typeBeginRequest    uint8 = 1
	typeAbortRequest    uint8 = 2
	typeEndRequest      uint8 = 3
	typeParams          uint8 = 4
	typeStdin           uint8 = 5
	typeStdout          uint8 = 6
	typeStderr          uint8 = 7
	typeData            uint8 = 8
	typeGetValues       uint8 = 9
	typeGetValuesResult uint8 = 10
	typeUnknownType     uint8 = 11

	flagKeepConn = 1
)

// errFraming marks a malformed record stream: the connection cannot be
// resynchronised and is closed.
var errFraming = errors.New("fastcgi framing error")

// header is a decoded record header.
type header struct {
	Type       uint8
	ID         uint16
	ContentLen uint16
	PadLen     uint8
}

func parseHeader(b []byte) (header, error) {
	h := header{
		Type:       b[1],
		ID:         binary.BigEndian.Uint16(b[2:4]),
		ContentLen: binary.BigEndian.Uint16(b[4:6]),
		PadLen:     b[6],
	}
	if b[0] != fcgiVersion {
		return h, fmt.Errorf("%w: version %d, want 1", errFraming, b[0])
	}
	return h, nil
}

// putHeader writes a record header for content of n bytes padded to a
// multiple of 8 and returns the padding length.
func putHeader(b []byte, typ uint8, id uint16, n int) int {
	pad := -n & 7
	b[0] = fcgiVersion
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:4], id)
	binary.BigEndian.PutUint16(b[4:6], uint16(n))
	b[6] = uint8(pad)
	b[7] = 0
	return pad
}

// recordReader reads records from a buffered stream. Records that fit the
// bufio buffer are returned in place; larger ones go through scratch.
type recordReader struct {
	br      *bufio.Reader
	scratch []byte
	// dl, when set, arms the read deadline: its waitDeadline says how
	// long to wait for the first byte of a record, timeout bounds the rest.
	dl      deadlines
	timeout time.Duration
	armed   bool // a record deadline is in force
}

// deadlines is the connection side of a recordReader (an interface rather
// than func fields, which would allocate each time a reader is lent).
type deadlines interface {
	SetReadDeadline(time.Time) error
	waitDeadline() time.Time // for the first byte of the next record
	woke()                   // the wait is over
}

// next returns the next record; its content is valid until the next call.
// A clean EOF between records is io.EOF; EOF inside one is a framing error.
func (rr *recordReader) next() (header, []byte, error) {
	rr.armed = false
	if rr.br.Buffered() == 0 {
		if rr.dl != nil {
			if err := rr.dl.SetReadDeadline(rr.dl.waitDeadline()); err != nil {
				return header{}, nil, fmt.Errorf("set read deadline: %w", err)
			}
		}
		_, err := rr.br.Peek(1)
		if rr.dl != nil {
			rr.dl.woke()
		}
		if err != nil {
			return header{}, nil, err // io.EOF here is a clean end
		}
	}
	hb, err := rr.peek(headerLen)
	if err != nil {
		return header{}, nil, truncated(err, "header")
	}
	h, err := parseHeader(hb)
	if err != nil {
		return h, nil, err
	}
	total := headerLen + int(h.ContentLen) + int(h.PadLen)
	if total <= rr.br.Size() {
		b, err := rr.peek(total)
		if err != nil {
			return h, nil, truncated(err, "content")
		}
		// Discard cannot fail on buffered bytes; content stays valid
		// until the next read refills the buffer.
		_, _ = rr.br.Discard(total)
		return h, b[headerLen : headerLen+int(h.ContentLen)], nil
	}
	_, _ = rr.br.Discard(headerLen)
	if cap(rr.scratch) < int(h.ContentLen)+int(h.PadLen) {
		rr.scratch = make([]byte, maxContent+255)
	}
	b := rr.scratch[:int(h.ContentLen)+int(h.PadLen)]
	if err := rr.arm(); err != nil {
		return h, nil, err
	}
	if _, err := io.ReadFull(rr.br, b); err != nil {
		return h, nil, truncated(err, "content")
	}
	return h, b[:h.ContentLen], nil
}

// peek returns n buffered bytes, arming the record deadline if it has to
// go to the network for them.
func (rr *recordReader) peek(n int) ([]byte, error) {
	if rr.br.Buffered() < n {
		if err := rr.arm(); err != nil {
			return nil, err
		}
	}
	return rr.br.Peek(n)
}

func (rr *recordReader) arm() error {
	if rr.armed || rr.dl == nil {
		return nil
	}
	rr.armed = true
	if err := rr.dl.SetReadDeadline(time.Now().Add(rr.timeout)); err != nil {
		return fmt.Errorf("set read deadline: %w", err)
	}
	return nil
}

func truncated(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated record %s at EOF", errFraming, what)
	}
	return err
}
