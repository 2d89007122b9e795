package bridge

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
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
// A record must be read whole within timeout of its first byte: next sets
// that deadline on nc when it has to read more of one.
type recordReader struct {
	br      *bufio.Reader
	scratch []byte
	nc      net.Conn // what br reads
	timeout time.Duration
}

// await waits for the first byte of the next record, with the deadline
// that the caller set; io.EOF is a clean end.
func (rr *recordReader) await() error {
	_, err := rr.br.Peek(1)
	return err
}

// next returns the next record, which has begun (see await); its content
// is valid until the next call. EOF inside a record is a framing error.
func (rr *recordReader) next() (header, []byte, error) {
	armed := rr.br.Buffered() < headerLen
	if armed {
		if err := rr.arm(); err != nil {
			return header{}, nil, err
		}
	}
	hb, err := rr.br.Peek(headerLen)
	if err != nil {
		return header{}, nil, truncated(err, "header")
	}
	h, err := parseHeader(hb)
	if err != nil {
		return h, nil, err
	}
	total := headerLen + int(h.ContentLen) + int(h.PadLen)
	if !armed && rr.br.Buffered() < total {
		if err := rr.arm(); err != nil {
			return h, nil, err
		}
	}
	if total <= rr.br.Size() {
		b, err := rr.br.Peek(total)
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
	if _, err := io.ReadFull(rr.br, b); err != nil {
		return h, nil, truncated(err, "content")
	}
	return h, b[:h.ContentLen], nil
}

// arm sets the deadline of the record under way.
func (rr *recordReader) arm() error {
	if err := rr.nc.SetReadDeadline(time.Now().Add(rr.timeout)); err != nil {
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
