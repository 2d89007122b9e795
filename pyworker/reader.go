package pyworker

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// readLoop reads the worker's frames and hands them to their requests. It
// never waits on a Sink: DATA is queued on the stream, whose send window
// bounds the queue.
func (w *Worker) readLoop(r *bufio.Reader) {
	defer w.lose()
	var hdr [headerSize]byte
	var readyOnce sync.Once
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		h := parseHeader(hdr[:])
		if h.n > maxPayload(h.typ) {
			w.log.Error().Uint8("type", h.typ).Uint32("length", h.n).Msg("worker sent an oversized frame; killing it")
			w.Kill()
			return
		}
		var data []byte
		var buf *[]byte
		if h.typ == tData {
			buf = w.bufs.Get().(*[]byte)
			data = (*buf)[:h.n]
		} else {
			data = make([]byte, h.n)
		}
		if _, err := io.ReadFull(r, data); err != nil {
			return
		}
		now := time.Now().UnixNano()
		if h.typ != tPing { // a heartbeat is not activity (inactivity-timeout)
			w.activity.Store(now)
		}
		switch h.typ {
		case tPing:
			w.beat.Store(now)
		case tReady:
			if err := w.parseReady(data); err != nil {
				w.log.Error().Err(err).Msg("bad READY frame; killing the worker")
				w.Kill()
				return
			}
			readyOnce.Do(func() { close(w.ready) })
		case tWant:
			if s := w.stream(h.id, false); s != nil && len(data) == 4 {
				s.grant(int(binary.BigEndian.Uint32(data)))
			}
		case tLog:
			w.logFrame(h, data)
		case tReturn:
			w.repaid(h.id, h.flags, data)
		case tResponse:
			if s := w.stream(h.id, true); s != nil {
				w.whole(s, h.flags, data)
			}
		case tHeaders, tData, tEnd:
			s := w.stream(h.id, h.typ == tEnd)
			if s != nil && h.typ == tEnd && s.freed != nil {
				s.freed() // after the removal: InFlight no longer counts it
			}
			if s != nil && h.typ != tEnd {
				s.begun = true
			}
			if s == nil || !s.push(event{typ: h.typ, flags: h.flags, data: data, buf: buf}) {
				w.putBuf(buf)
			}
		default:
			w.log.Warn().Uint8("type", h.typ).Msg("unknown frame from worker ignored")
			w.putBuf(buf)
		}
	}
}

// whole handles a response that came in one frame (s is already
// forgotten). A complete response goes to the Sink from here when it takes
// it; otherwise, and for any other outcome, it is queued for Serve as the
// HEADERS, DATA and END frames it stands for.
func (w *Worker) whole(s *stream, outcome uint8, p []byte) {
	if s.freed != nil {
		s.freed()
	}
	if len(p) < 4 || int(binary.BigEndian.Uint32(p)) > len(p)-4 {
		w.log.Error().Msg("malformed RESPONSE frame from worker")
		s.push(event{typ: tEnd, flags: outAppError})
		return
	}
	hn := 4 + int(binary.BigEndian.Uint32(p))
	head, body := p[4:hn], p[hn:]
	if s.whole != nil && outcome == outOK && !s.begun && !s.aborting.Load() {
		// The block is only lent to the Sink: this goroutine's own buffer.
		code, block, err := appendCGIHeaders(w.headBuf[:0], head)
		if err == nil {
			w.headBuf = block
			s.over.Store(true)
			ok, err := s.whole.WriteWhole(code, block, body)
			if ok {
				s.push(event{typ: tResponse, status: code, n: int64(len(body)), err: err})
				return
			}
			s.over.Store(false)
		}
	}
	s.push(event{typ: tHeaders, data: head})
	if len(body) > 0 {
		s.push(event{typ: tData, data: body})
	}
	s.push(event{typ: tEnd, flags: outcome})
}

// stream finds a request by id; with remove it also forgets it (END).
func (w *Worker) stream(id uint32, remove bool) *stream {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.streams[id]
	if remove {
		delete(w.streams, id)
	}
	return s
}

func (w *Worker) putBuf(b *[]byte) {
	if b != nil {
		w.bufs.Put(b)
	}
}

func (w *Worker) parseReady(p []byte) error {
	pid, version, ok := bytes.Cut(p, []byte{0})
	if !ok {
		return fmt.Errorf("malformed READY %q", p)
	}
	n, err := strconv.Atoi(string(pid))
	if err != nil || n != w.pid {
		return fmt.Errorf("READY from pid %q, started pid %d", pid, w.pid)
	}
	w.version = string(version)
	return nil
}

// logFrame logs a request's wsgi.errors output or traceback on the
// request's logger; lines of finished requests go to the worker's.
func (w *Worker) logFrame(h header, text []byte) {
	log := w.log
	if s := w.stream(h.id, false); s != nil {
		log = s.log
	}
	level := zerolog.InfoLevel
	switch h.flags {
	case levelWarn:
		level = zerolog.WarnLevel
	case levelError:
		level = zerolog.ErrorLevel
	}
	log.WithLevel(level).Int("pid", w.pid).Msg(string(text))
}
