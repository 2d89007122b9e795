package pyworker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Serve runs one request on the worker and streams its response to c.Out.
// Cancelling ctx means the client is gone: the worker is told to stop the
// request, Serve waits (at most Config.AbortWait) for it to finish and
// returns ErrAborted. Serve does not return while a c.Body.Read is under
// way, so a Body must not block past the request's end.
func (w *Worker) Serve(ctx context.Context, c *Call) (Result, error) {
	s, err := w.open(c)
	if err != nil {
		return Result{}, err
	}
	var flags uint8
	if c.Body == nil {
		flags = fNoBody
	}
	env := c.Environ
	if env == nil {
		env = new(Environ)
	}
	frame := env.frame(flags, s.id, c.ScriptMTime)

	var pumped chan struct{}
	defer func() {
		if s.finished != nil {
			close(s.finished)
		}
		for _, ev := range s.abandon() {
			w.putBuf(ev.buf)
		}
		if pumped != nil && !errors.Is(context.Cause(ctx), ErrCut) {
			<-pumped // a cut request's pump ends when its Body's read does
		}
	}()
	w.activity.Store(time.Now().UnixNano())
	if err := w.send(frame); err != nil {
		w.stream(s.id, true)
		// Nothing reached the worker: ErrClosed tells the caller it may
		// send the request elsewhere.
		return Result{}, fmt.Errorf("%w before the request was sent (%w): %v", ErrWorkerLost, ErrClosed, err)
	}
	if c.Body != nil {
		pumped = make(chan struct{})
		go func() {
			defer close(pumped)
			w.pumpBody(s, c)
		}()
	}
	return w.respond(ctx, s, c)
}

// open registers a new stream unless the worker is stopping.
func (w *Worker) open(c *Call) (*stream, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.lost:
		return nil, fmt.Errorf("%w: pid %d, before the request was sent (%w)", ErrWorkerLost, w.pid, ErrClosed)
	default:
	}
	if w.closing {
		return nil, ErrClosed
	}
	for {
		w.nextID++
		_, busy := w.streams[w.nextID]
		_, lent := w.loans[w.nextID]
		if !busy && !lent && w.nextID != 0 {
			break
		}
	}
	s := newStream(w.nextID, c)
	w.streams[s.id] = s
	return s, nil
}

// respond passes the request's frames to its Sink until END.
func (w *Worker) respond(ctx context.Context, s *stream, c *Call) (Result, error) {
	var (
		res      Result
		failure  error // set once the request is being aborted
		deadline <-chan time.Time
		gone     = ctx.Done()
	)
	abort := func(err error) {
		failure = err
		s.aborting.Store(true)
		_ = w.sendCtl(tAbort, s.id, 0, false)
		deadline = time.After(w.cfg.AbortWait)
	}
	for {
		ev, ok := s.pop()
		if !ok {
			select {
			case <-s.wake:
			case <-gone:
				gone = nil
				if !s.over.Load() { // not the end of a whole response
					cause := context.Cause(ctx)
					abort(fmt.Errorf("%w: %v", ErrAborted, cause))
					if errors.Is(cause, ErrCut) {
						return res, failure // see ErrCut
					}
				}
			case <-deadline:
				c.Log.Warn().Int("pid", w.pid).AnErr("cause", context.Cause(ctx)).Dur("abort_wait", w.cfg.AbortWait).
					Msg("application did not stop after its request was aborted")
				return res, failure
			case <-w.lost:
				if failure != nil {
					return res, failure
				}
				return res, fmt.Errorf("%w: pid %d", ErrWorkerLost, w.pid)
			}
			continue
		}
		switch ev.typ {
		case tHeaders:
			if failure != nil {
				break
			}
			if res.HeadersSent {
				c.Log.Error().Int("pid", w.pid).Msg("response headers sent twice by the worker")
				abort(fmt.Errorf("%w: headers sent twice", ErrApplication))
				break
			}
			code, block, err := cgiHeaders(ev.data)
			if err != nil {
				c.Log.Error().Int("pid", w.pid).Err(err).Msg("invalid response headers from application")
				abort(fmt.Errorf("%w: %v", ErrApplication, err))
				break
			}
			if err := c.Out.WriteHeader(code, block); err != nil {
				abort(fmt.Errorf("%w: %w", ErrAborted, err))
				break
			}
			res.Status, res.HeadersSent = code, true
		case tData:
			if failure == nil {
				// The worker has finished when END is queued behind this
				// block: no credit to return, and the block may go out
				// with the end of the request.
				last := s.endQueued()
				if !res.HeadersSent {
					abort(fmt.Errorf("%w: body before headers", ErrApplication))
				} else if err := write(c.Out, ev.data, last); err != nil {
					abort(fmt.Errorf("%w: %w", ErrAborted, err))
				} else {
					res.BytesOut += int64(len(ev.data))
					if !last {
						_ = w.sendCtl(tCredit, s.id, uint32(len(ev.data)), true)
					}
				}
			}
			w.putBuf(ev.buf)
		case tEnd:
			if failure != nil {
				return res, failure
			}
			if ev.flags == outOK && !res.HeadersSent {
				c.Log.Error().Int("pid", w.pid).Msg("the worker ended a response it never started")
				return res, fmt.Errorf("%w: response without headers", ErrApplication)
			}
			return res, w.outcome(ev.flags)
		case tResponse: // the reader passed it to the Sink whole
			res.Status, res.HeadersSent, res.BytesOut = ev.status, true, ev.n
			if ev.err != nil {
				return res, fmt.Errorf("%w: %w", ErrAborted, ev.err)
			}
			return res, failure
		}
	}
}

// write passes a body block to out, as its final block when it is one.
func write(out Sink, p []byte, last bool) error {
	if f, ok := out.(FinalWriter); ok && last {
		return f.WriteFinal(p)
	}
	return out.Write(p)
}

// outcome maps an END outcome to Serve's error.
func (w *Worker) outcome(code uint8) error {
	switch code {
	case outOK:
		return nil
	case outNotFound:
		return ErrNotFound
	case outAppError:
		return ErrApplication
	case outTruncated:
		return fmt.Errorf("%w: response truncated", ErrApplication)
	case outAborted:
		return ErrAborted
	case outClosed:
		return ErrClosed
	case outReload:
		w.retire()
		return ErrReloadRequired
	default:
		return fmt.Errorf("%w: unknown outcome %d", ErrApplication, code)
	}
}
