package pyworker

import (
	"bytes"
	"errors"
	"fmt"
)

// cgiHeaders checks a HEADERS payload again (the worker is not trusted to
// have done it) and turns it into the CGI header block for the Sink.
func cgiHeaders(p []byte) (int, []byte, error) {
	return appendCGIHeaders(nil, p)
}

// appendCGIHeaders is cgiHeaders appending the block to dst.
func appendCGIHeaders(dst, p []byte) (int, []byte, error) {
	status, rest, ok := bytes.Cut(p, []byte{0})
	if len(status) < 4 || status[3] != ' ' || status[0] == '0' || !isDigit(status[0]) || !isDigit(status[1]) || !isDigit(status[2]) {
		return 0, nil, fmt.Errorf("invalid status %q", status)
	}
	if bad(status) {
		return 0, nil, fmt.Errorf("control character in status %q", status)
	}
	code := int(status[0]-'0')*100 + int(status[1]-'0')*10 + int(status[2]-'0')
	block := append(dst, "Status: "...)
	block = append(block, status...)
	block = append(block, "\r\n"...)
	for ok {
		var name, value []byte
		if name, rest, ok = bytes.Cut(rest, []byte{0}); !ok {
			return 0, nil, errors.New("malformed headers frame")
		}
		value, rest, ok = bytes.Cut(rest, []byte{0})
		if len(name) == 0 || !isToken(name) {
			return 0, nil, fmt.Errorf("invalid header name %q", name)
		}
		if bad(value) {
			return 0, nil, fmt.Errorf("control character in header %q", name)
		}
		block = append(block, name...)
		block = append(block, ": "...)
		block = append(block, value...)
		block = append(block, "\r\n"...)
	}
	return code, append(block, "\r\n"...), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func bad(b []byte) bool { return bytes.ContainsAny(b, "\r\n\x00") }

// tokenChar holds the bytes allowed in a header name (RFC 9110 tchar).
var tokenChar = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = true
	}
	for _, c := range `"(),/:;<=>?@[\]{}` {
		t[c] = false
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenChar[c] {
			return false
		}
	}
	return true
}
