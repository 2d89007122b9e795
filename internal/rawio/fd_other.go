//go:build !linux

package rawio

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Dup duplicates fd, close-on-exec.
func Dup(fd int) (int, error) {
	r, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fcntl", err)
	}
	return r, nil
}

// Close closes fd.
func Close(fd int) error { return unix.Close(fd) }

// SendFD sends msg with a copy of fd (SCM_RIGHTS), without waiting.
func SendFD(sock int, msg []byte, fd int) error {
	return unix.Sendmsg(sock, msg, unix.UnixRights(fd), nil, unix.MSG_DONTWAIT)
}

// FileConn serves the socket fd, which it takes, as a net.Conn.
func FileConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "socket")
	defer f.Close()
	return net.FileConn(f)
}
