package main

import (
	"io"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// logWriter buffers the JSON log: under load the access log's line per
// request cost a write system call each (measured: about 9 µs of CPU per
// hello-world request). Lines at warn and above go out at once, with what
// was buffered before them; the others within logFlushEvery, or as soon as
// the buffer holds logFlushSize.
type logWriter struct {
	mu    sync.Mutex
	w     io.Writer
	buf   []byte
	timer *time.Timer
	armed bool
}

const (
	logFlushEvery = 50 * time.Millisecond
	logFlushSize  = 64 << 10
)

func newLogWriter(w io.Writer) *logWriter { return &logWriter{w: w} }

func (l *logWriter) Write(p []byte) (int, error) { return l.WriteLevel(zerolog.InfoLevel, p) }

// WriteLevel implements zerolog.LevelWriter.
func (l *logWriter) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if level >= zerolog.WarnLevel || len(l.buf) >= logFlushSize {
		return len(p), l.flushLocked()
	}
	if !l.armed {
		l.armed = true
		if l.timer == nil {
			l.timer = time.AfterFunc(logFlushEvery, l.Flush)
		} else {
			l.timer.Reset(logFlushEvery)
		}
	}
	return len(p), nil
}

// Flush writes what is buffered.
func (l *logWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.flushLocked()
}

func (l *logWriter) flushLocked() error {
	l.armed = false
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.w.Write(l.buf)
	l.buf = l.buf[:0]
	return err
}
