package rawio

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A blocking socket given to FileConn is served from the poller: read and
// written directly, with deadlines, and it knows its addresses.
func TestFileConnServesASocket(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer peer.Close()
	c, err := FileConn(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if fl, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK == 0 {
		t.Fatalf("not made non-blocking: %x %v", fl, err)
	}
	r, ok := NewReader(c).(*reader)
	if !ok {
		t.Fatal("not read directly")
	}
	if _, ok := NewWriter(c).(*writer); !ok {
		t.Fatal("not written directly")
	}
	if _, err := peer.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
	if c.LocalAddr() == nil || c.RemoteAddr() == nil || c.RemoteAddr().Network() != "unix" {
		t.Fatalf("addresses %v %v", c.LocalAddr(), c.RemoteAddr())
	}
	peer.Close()
	c.SetReadDeadline(time.Time{})
	if _, err := r.Read(buf); err != io.EOF {
		t.Fatalf("read after the peer closed: %v", err)
	}
}

// SendFD passes a descriptor of the same file, and Dup and Close are the
// system calls they name.
func TestSendFDDupClose(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	f, err := os.CreateTemp(t.TempDir(), "fd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dup, err := Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if fl, _ := unix.FcntlInt(uintptr(dup), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Fatal("the duplicate is not close-on-exec")
	}
	if err := SendFD(fds[0], []byte{7}, dup); err != nil {
		t.Fatal(err)
	}
	if err := Close(dup); err != nil {
		t.Fatal(err)
	}
	if err := Close(dup); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("closed twice: %v", err)
	}
	msg, oob := make([]byte, 4), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(fds[1], msg, oob, 0)
	if err != nil || n != 1 || msg[0] != 7 {
		t.Fatalf("recvmsg %d %v", n, err)
	}
	cms, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(cms) != 1 {
		t.Fatalf("control %v %v", cms, err)
	}
	got, err := unix.ParseUnixRights(&cms[0])
	if err != nil || len(got) != 1 {
		t.Fatalf("rights %v %v", got, err)
	}
	defer syscall.Close(got[0])
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Fstat(got[0], &b) != nil || a.Ino != b.Ino {
		t.Fatal("the descriptor received is not the file's")
	}
}
