package rawio

import (
	"net"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The calls that move a connection between the poller, the idle epoll set
// and a worker are direct too. They come after the bridge idled (a request
// arrives, a loan comes back), so each one the scheduler heard of woke the
// monitor thread: 40-50 of its 20 µs sleeps per 10 MiB upload.

// Dup duplicates fd, close-on-exec.
func Dup(fd int) (int, error) {
	r, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, os.NewSyscallError("fcntl", e)
	}
	return int(r), nil
}

// Close closes fd. It does not block: no socket here has SO_LINGER.
func Close(fd int) error {
	if _, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0); e != 0 {
		return os.NewSyscallError("close", e)
	}
	return nil
}

// EpollCtl is epoll_ctl(2).
func EpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	_, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0)
	if e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	return nil
}

// SendFD sends msg with a copy of fd (SCM_RIGHTS) on the datagram or
// stream socket sock, without waiting: EAGAIN when it is full.
func SendFD(sock int, msg []byte, fd int) error {
	oob := unix.UnixRights(fd)
	iov := unix.Iovec{Base: &msg[0]}
	iov.SetLen(len(msg))
	h := unix.Msghdr{Iov: &iov, Control: &oob[0]}
	h.SetIovlen(1)
	h.SetControllen(len(oob))
	_, _, e := unix.RawSyscall(unix.SYS_SENDMSG, uintptr(sock), uintptr(unsafe.Pointer(&h)), unix.MSG_DONTWAIT)
	if e != 0 {
		return os.NewSyscallError("sendmsg", e)
	}
	return nil
}

// FileConn serves the socket fd, which it takes, as a net.Conn in the
// poller. net.FileConn would duplicate it and ask its type and both
// addresses first, five calls the scheduler hears of; this one asks the
// addresses only if they are wanted.
func FileConn(fd int) (net.Conn, error) {
	fl, _, e := unix.RawSyscall(unix.SYS_FCNTL, uintptr(fd), unix.F_GETFL, 0)
	if e == 0 && fl&unix.O_NONBLOCK == 0 {
		_, _, e = unix.RawSyscall(unix.SYS_FCNTL, uintptr(fd), unix.F_SETFL, fl|unix.O_NONBLOCK)
	}
	if e != 0 {
		Close(fd)
		return nil, os.NewSyscallError("fcntl", e)
	}
	// Non-blocking, so os.NewFile puts it in the poller.
	return &sockFile{os.NewFile(uintptr(fd), "socket")}, nil
}

// sockFile is a socket served through os.File, which has every method of
// net.Conn but the addresses.
type sockFile struct{ *os.File }

func (s *sockFile) LocalAddr() net.Addr  { return s.addr(unix.Getsockname) }
func (s *sockFile) RemoteAddr() net.Addr { return s.addr(unix.Getpeername) }

func (s *sockFile) addr(get func(int) (unix.Sockaddr, error)) net.Addr {
	var sa unix.Sockaddr
	if rc, err := s.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { sa, _ = get(int(fd)) })
	}
	switch a := sa.(type) {
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: a.Name, Net: "unix"}
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return nil
}
