package rawio

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// socketPair is a connected pair of unix sockets from package net.
func socketPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

func TestSocketsAreReadAndWrittenDirectly(t *testing.T) {
	a, b := socketPair(t)
	if _, ok := NewReader(a).(*reader); !ok {
		t.Fatal("a unix socket is not read directly")
	}
	if _, ok := NewWriter(a).(*writer); !ok {
		t.Fatal("a unix socket is not written directly")
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if _, ok := NewReader(pr).(*reader); !ok {
		t.Fatal("a pipe of os.Pipe is not read directly")
	}
	// A blocking descriptor would block the scheduler's thread: not
	// direct. (Fd puts a file's descriptor in blocking mode.)
	_ = pw.Fd()
	if _, ok := NewWriter(pw).(*plainWriter); !ok {
		t.Fatal("a blocking pipe is written directly")
	}
	if r := NewReader(bytes.NewReader(nil)); r == nil {
		t.Fatal("no reader for a reader without descriptor")
	}
	_ = b
}

func TestVectorRoundTripWithShortWrites(t *testing.T) {
	a, b := socketPair(t)
	// Far more than a socket buffer holds: writev comes back short and
	// waits for room; the slow reader sees every byte in order.
	var parts [][]byte
	var want []byte
	for i := range 3000 {
		p := bytes.Repeat([]byte{byte(i)}, 1+i%4096)
		parts = append(parts, p)
		want = append(want, p...)
	}
	got := make(chan []byte)
	go func() {
		var all []byte
		buf := make([]byte, 4096)
		r := NewReader(b)
		for {
			n, err := r.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					t.Error(err)
				}
				got <- all
				return
			}
			time.Sleep(10 * time.Microsecond)
		}
	}()
	w := NewWriter(a)
	n, err := w.WriteVec(parts)
	if err != nil || n != int64(len(want)) {
		t.Fatalf("WriteVec = %d, %v; want %d", n, err, len(want))
	}
	if n, err := w.Write([]byte("end")); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	want = append(want, "end"...)
	a.Close()
	if all := <-got; !bytes.Equal(all, want) {
		t.Fatalf("read %d bytes, not the %d written", len(all), len(want))
	}
}

func TestDeadlinesAndErrors(t *testing.T) {
	a, b := socketPair(t)
	r := NewReader(a)
	a.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	a.SetReadDeadline(time.Time{})

	w := NewWriter(b)
	b.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := w.Write(make([]byte, 64<<20)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write past its deadline: %v", err)
	}
	b.Close()
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1<<20)
	for {
		if _, err := r.Read(buf); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("read from a closed peer: %v, want EOF", err)
			}
			break
		}
	}
	if _, err := NewWriter(a).Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write to a closed peer: %v, want EPIPE", err)
	}
	a.Close()
	if _, err := r.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read of a closed socket: %v", err)
	}
}

func TestStat(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.wsgi")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 6789, time.UTC)
	if err := os.Chtimes(file, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.wsgi")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{file, link} {
		fi, err := Stat(p)
		if err != nil || !fi.Mode.IsRegular() || fi.Mtime != mtime.UnixNano() {
			t.Errorf("Stat(%s) = %+v, %v; want a regular file of mtime %d", p, fi, err, mtime.UnixNano())
		}
	}
	if fi, err := Lstat(link); err != nil || fi.Mode&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(link) = %+v, %v; want a symbolic link", fi, err)
	}
	if fi, err := Lstat(file); err != nil || !fi.Mode.IsRegular() || fi.Mtime != mtime.UnixNano() {
		t.Errorf("Lstat(file) = %+v, %v", fi, err)
	}
	if fi, err := Stat(dir); err != nil || !fi.Mode.IsDir() {
		t.Errorf("Stat(dir) = %+v, %v", fi, err)
	}
	if _, err := Stat(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Stat of a missing file: %v", err)
	}
	if _, err := Stat(filepath.Join(file, "below")); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("Stat below a file: %v", err)
	}
	if _, err := Stat("bad\x00path"); err == nil {
		t.Error("Stat of a path with a NUL succeeded")
	}
}
