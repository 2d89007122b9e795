package bridge

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors of the PARAMS stream; each becomes a 400 for its request.
var (
	errParamsTooLarge  = errors.New("params exceed MaxParamsBytes")
	errTooManyParams   = errors.New("params exceed MaxParams")
	errParamsMalformed = errors.New("malformed name-value pairs")
)

// pairScanner follows the length fields of a name-value stream that
// arrives in arbitrary pieces, enforcing the limits before any name or
// value is stored, so an absurd length is refused without allocating it.
type pairScanner struct {
	inBody    bool // between lengths and the next pair
	wantValue bool // the next length is the value's
	lenBuf    [4]byte
	lenN      int    // bytes of a 4-byte length seen so far
	nameLen   uint32 // of the pair being scanned
	remaining uint32 // name+value bytes still to come
	bytes     int64  // name+value bytes so far
	count     int
	maxBytes  int64
	maxCount  int
}

// feed scans p; after an error the scanner must not be used again.
func (s *pairScanner) feed(p []byte) error {
	for len(p) > 0 {
		if s.inBody {
			n := uint32(len(p))
			if n > s.remaining {
				n = s.remaining
			}
			s.remaining -= n
			p = p[n:]
			if s.remaining == 0 {
				s.inBody = false
			}
			continue
		}
		b := p[0]
		p = p[1:]
		var v uint32
		switch {
		case s.lenN == 0 && b&0x80 == 0:
			v = uint32(b)
		case s.lenN < 3:
			s.lenBuf[s.lenN] = b
			s.lenN++
			continue
		default:
			s.lenBuf[3] = b
			s.lenN = 0
			v = binary.BigEndian.Uint32(s.lenBuf[:]) & 0x7fffffff
		}
		if !s.wantValue {
			s.nameLen = v
			s.wantValue = true
			continue
		}
		s.wantValue = false
		s.count++
		s.bytes += int64(s.nameLen) + int64(v)
		if s.count > s.maxCount {
			return fmt.Errorf("%w (%d)", errTooManyParams, s.maxCount)
		}
		if s.bytes > s.maxBytes {
			return fmt.Errorf("%w (%d)", errParamsTooLarge, s.maxBytes)
		}
		s.remaining = s.nameLen + v
		s.inBody = s.remaining > 0
	}
	return nil
}

// complete reports whether the stream so far ends on a pair boundary.
func (s *pairScanner) complete() bool {
	return !s.inBody && !s.wantValue && s.lenN == 0
}

// decodePairs appends the pairs of a complete stream to dst. Names and
// values are substrings of s, so a request's params share one allocation.
func decodePairs(s string, dst []Param) ([]Param, error) {
	for len(s) > 0 {
		nl, n := readLen(s)
		if n == 0 {
			return dst, errParamsMalformed
		}
		s = s[n:]
		vl, n := readLen(s)
		if n == 0 {
			return dst, errParamsMalformed
		}
		s = s[n:]
		if uint64(nl)+uint64(vl) > uint64(len(s)) {
			return dst, errParamsMalformed
		}
		dst = append(dst, Param{Name: s[:nl], Value: s[nl : nl+vl]})
		s = s[nl+vl:]
	}
	return dst, nil
}

// readLen decodes a 1- or 4-byte length; n is 0 when s is too short.
func readLen(s string) (v uint32, n int) {
	if len(s) == 0 {
		return 0, 0
	}
	if s[0]&0x80 == 0 {
		return uint32(s[0]), 1
	}
	if len(s) < 4 {
		return 0, 0
	}
	return uint32(s[0]&0x7f)<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3]), 4
}

// appendPair encodes one name-value pair.
func appendPair(dst []byte, name, value string) []byte {
	dst = appendLen(dst, len(name))
	dst = appendLen(dst, len(value))
	dst = append(dst, name...)
	return append(dst, value...)
}

func appendLen(dst []byte, n int) []byte {
	if n < 0x80 {
		return append(dst, byte(n))
	}
	return binary.BigEndian.AppendUint32(dst, uint32(n)|0x80000000)
}
