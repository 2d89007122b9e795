package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wsgifcgi/wsgifcgi/internal/testlog"
	"golang.org/x/sys/unix"
)

// log-format = "console" colours lines on a terminal and nowhere else.
func TestConsoleColoursOnlyOnATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log := newLogger(f, nil, "console", "info")
	log.Info().Str("k", "v").Msg("to a file")
	b, _ := os.ReadFile(f.Name())
	if !strings.Contains(string(b), "to a file") || strings.Contains(string(b), "\x1b[") {
		t.Errorf("console log to a file: %q, want text without escape codes", b)
	}

	master, slave := openPTY(t)
	log = newLogger(slave, nil, "console", "info")
	log.Info().Str("k", "v").Msg("to a terminal")
	got := readSome(t, master, "to a terminal")
	if !strings.Contains(got, "\x1b[") {
		t.Errorf("console log to a terminal: %q, want colours", got)
	}
}

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func readSome(t *testing.T, f *os.File, want string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	f.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.Contains(string(got), want) {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("reading the terminal: %v (got %q)", err, got)
		}
	}
	return string(got)
}

// The JSON log buffers info lines for a moment, and writes a warning at
// once with whatever came before it.
func TestLogWriterBuffers(t *testing.T) {
	var out syncBuffer
	lw := newLogWriter(&out)
	log := newLogger(nil, lw, "json", "info")
	log.Info().Msg("first")
	if out.String() != "" {
		t.Fatalf("an info line went out at once: %q", out.String())
	}
	log.Warn().Msg("second")
	if s := out.String(); !strings.Contains(s, "first") || !strings.Contains(s, "second") {
		t.Fatalf("after a warning: %q", s)
	}
	log.Info().Msg("third")
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(out.String(), "third") {
		if time.Now().After(deadline) {
			t.Fatal("a buffered line was never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is safe for the flush timer's goroutine.
type syncBuffer = testlog.Buffer

// blockingWriter holds its first write until release is closed.
type blockingWriter struct {
	syncBuffer
	started chan struct{}
	release chan struct{}
	first   bool
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	if !b.first {
		b.first = true
		close(b.started)
		<-b.release
	}
	return b.syncBuffer.Write(p)
}

// A write that blocks holds up the caller that started it, not the others;
// a warning waits until it is out, after everything before it.
func TestLogWriterBlockedWrite(t *testing.T) {
	bw := &blockingWriter{started: make(chan struct{}), release: make(chan struct{})}
	lw := newLogWriter(bw)
	log := newLogger(nil, lw, "json", "info")
	big := strings.Repeat("x", logFlushSize)
	go log.Info().Msg(big) // fills the buffer: this caller writes, and blocks
	<-bw.started

	infoDone := make(chan struct{})
	go func() {
		for i := 0; i < 100; i++ {
			log.Info().Int("n", i).Msg("meanwhile")
		}
		log.Info().Msg(big) // full again: left to the write under way
		close(infoDone)
	}()
	select {
	case <-infoDone:
	case <-time.After(5 * time.Second):
		t.Fatal("info lines waited for a blocked write")
	}

	warnDone := make(chan struct{})
	go func() {
		log.Warn().Msg("warning")
		close(warnDone)
	}()
	select {
	case <-warnDone:
		t.Fatal("a warning returned before it was written")
	case <-time.After(50 * time.Millisecond):
	}
	close(bw.release)
	<-warnDone
	s := bw.String()
	first, last, warn := strings.Index(s, big), strings.LastIndex(s, `"n":99`), strings.Index(s, `"warning"`)
	if first < 0 || last < first || warn < last || strings.Count(s, big) != 2 {
		t.Fatalf("lines out of order or lost: first %d, n=99 %d, warning %d, %d big lines", first, last, warn, strings.Count(s, big))
	}
}
