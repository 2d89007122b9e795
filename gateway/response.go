package gateway

import (
	"fmt"
	"net/http"

	"github.com/wsgifcgi/wsgifcgi/bridge"
)

// sink passes a worker's response to the FastCGI connection. The header
// block is held back and sent with the first body block, so that a typical
// response costs one write.
type sink struct {
	w       bridge.ResponseWriter
	pending []byte
	buf     []byte
}

func (s *sink) WriteHeader(status int, block []byte) error {
	s.pending = append(s.pending[:0], block...)
	return nil
}

func (s *sink) Write(p []byte) error {
	if hw, ok := s.w.(bridge.HeadWriter); ok && len(s.pending) > 0 {
		_, err := hw.WriteWithHead(s.pending, p)
		s.pending = s.pending[:0]
		return err
	}
	_, err := s.w.Write(s.withHeader(p))
	return err
}

// withHeader prefixes p with the held header block, if any, once.
func (s *sink) withHeader(p []byte) []byte {
	if len(s.pending) == 0 {
		return p
	}
	s.buf = append(append(s.buf[:0], s.pending...), p...)
	s.pending = s.pending[:0]
	return s.buf
}

// WriteFinal implements pyworker.FinalWriter: the response's last block,
// with the header block when none was sent yet, goes out with the end of
// the request.
func (s *sink) WriteFinal(p []byte) error {
	return s.final(s.withHeader(p))
}

// WriteWhole implements pyworker.WholeWriter: the header block and the
// body go out with the end of the request in one write, from the goroutine
// that reads the worker.
func (s *sink) WriteWhole(_ int, block, body []byte) (bool, error) {
	e, ok := s.w.(bridge.Ender)
	if !ok {
		return false, nil
	}
	return e.EndWith(block, body)
}

func (s *sink) final(p []byte) error {
	if f, ok := s.w.(bridge.FinalWriter); ok {
		_, err := f.WriteFinal(p)
		return err
	}
	_, err := s.w.Write(p)
	return err
}

// flush sends a header block that no body followed.
func (s *sink) flush() error {
	if len(s.pending) == 0 {
		return nil
	}
	err := s.final(s.pending)
	s.pending = s.pending[:0]
	return err
}

// writeError sends a short error page with status code and returns code.
// 499 (client gone) has nobody to read a page.
func writeError(w bridge.ResponseWriter, code int) int {
	if code == 499 {
		return code
	}
	return writePage(w, code, "")
}

// writeDenied answers a request refused by access control, with its
// challenge when there is one.
func writeDenied(w bridge.ResponseWriter, v verdict) int {
	extra := ""
	if v.challenge != "" {
		extra = "WWW-Authenticate: " + v.challenge + "\r\n"
	}
	return writePage(w, v.status, extra)
}

func writePage(w bridge.ResponseWriter, code int, extraHeaders string) int {
	text := http.StatusText(code)
	body := fmt.Sprintf("<!DOCTYPE html>\n<html><head><title>%d %s</title></head><body><h1>%s</h1></body></html>\n", code, text, text)
	_, _ = fmt.Fprintf(w, "Status: %d %s\r\n%sContent-Type: text/html; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s",
		code, text, extraHeaders, len(body), body)
	return code
}
