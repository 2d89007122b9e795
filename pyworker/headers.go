package pyworker

import (
	"bytes"
	"errors"
	"fmt"
)

// cgiHeaders checks a HEADERS payload again (the worker is not trusted to
// have done it) and turns it into the CGI header block for the Sink.
func cgiHeaders(p []byte) (int, []byte, error) {
	fields := bytes.Split(p, []byte{0})
	if len(fields)%2 != 1 {
		return 0, nil, errors.New("malformed headers frame")
	}
	status := fields[0]
	if len(status) < 4 || status[3] != ' ' || !isDigit(status[0]) || !isDigit(status[1]) || !isDigit(status[2]) {
		return 0, nil, fmt.Errorf("invalid status %q", status)
	}
	if bad(status) {
		return 0, nil, fmt.Errorf("control character in status %q", status)
	}
	code := int(status[0]-'0')*100 + int(status[1]-'0')*10 + int(status[2]-'0')
	n := len("Status: \r\n\r\n") + len(p) + 3*len(fields)
	block := make([]byte, 0, n)
	block = append(block, "Status: "...)
	block = append(block, status...)
	block = append(block, "\r\n"...)
	for i := 1; i < len(fields); i += 2 {
		name, value := fields[i], fields[i+1]
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
	block = append(block, "\r\n"...)
	return code, block, nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func bad(b []byte) bool { return bytes.ContainsAny(b, "\r\n\x00") }

func isToken(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}
