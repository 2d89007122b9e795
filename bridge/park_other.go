//go:build !linux

package bridge

import (
	"net"

	"golang.org/x/sys/unix"
)

// peekReady is false while a read would block: true with data, at the end
// of the stream, and on errors (the next read reports them).
func peekReady(fd uintptr) bool {
	var b [1]byte
	_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err != unix.EAGAIN
}

// poller parks idle connections on Linux only (park_linux.go); elsewhere
// an idle connection keeps its reader goroutine and its record buffer.
type poller struct{ s *Server }

func (p *poller) park(nc net.Conn, seq uint64, since int64) bool {
	return false
}
func (p *poller) closeOldest() bool { return false }
func (p *poller) close()            {}
