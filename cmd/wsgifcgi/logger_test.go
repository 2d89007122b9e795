package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// log-format = "console" colours lines on a terminal and nowhere else.
func TestConsoleColoursOnlyOnATerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	log := newLogger(f, "console", "info")
	log.Info().Str("k", "v").Msg("to a file")
	b, _ := os.ReadFile(f.Name())
	if !strings.Contains(string(b), "to a file") || strings.Contains(string(b), "\x1b[") {
		t.Errorf("console log to a file: %q, want text without escape codes", b)
	}

	master, slave := openPTY(t)
	log = newLogger(slave, "console", "info")
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
