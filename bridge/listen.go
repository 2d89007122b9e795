package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ListenConfig tunes Listen.
type ListenConfig struct {
	// SocketMode is applied to a unix socket right after bind (0: leave
	// it to the umask).
	SocketMode os.FileMode
	// WebServerAddrs, when not empty, restricts a tcp listener to peers
	// with these IP addresses (or CIDR prefixes): others are closed at
	// once and reported by Accept as a *RejectedError, which Server.Serve
	// logs. This is FCGI_WEB_SERVER_ADDRS; see InheritedListener.
	WebServerAddrs []string
}

// RejectedError is returned by Accept for a peer not in WebServerAddrs;
// the connection is already closed and accepting may go on.
type RejectedError struct{ Addr net.Addr }

func (e *RejectedError) Error() string {
	return fmt.Sprintf("connection from %s refused: not in web-server-addrs", e.Addr)
}

// Listen opens a FastCGI listener from a spec:
//
//	unix:/path   a unix socket. A stale socket file nobody listens on is
//	             replaced; a live socket or any other file is an error. The
//	             file is removed on Close.
//	tcp:HOST:PORT
//	fd:N         an inherited listening socket (it must be one).
func Listen(spec string, cfg ListenConfig) (net.Listener, error) {
	kind, addr, ok := strings.Cut(spec, ":")
	if !ok || addr == "" {
		return nil, fmt.Errorf("listen %q: want unix:/path, tcp:HOST:PORT or fd:N", spec)
	}
	allow, err := parseAllowed(cfg.WebServerAddrs)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %w", spec, err)
	}
	var l net.Listener
	switch kind {
	case "unix":
		return listenUnix(addr, cfg.SocketMode)
	case "tcp":
		l, err = net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %q: %w", spec, err)
		}
	case "fd":
		n, err := strconv.Atoi(addr)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("listen %q: bad file descriptor number", spec)
		}
		if l, err = fdListener(n); err != nil {
			return nil, fmt.Errorf("listen %q: %w", spec, err)
		}
	default:
		return nil, fmt.Errorf("listen %q: unknown kind %q, want unix, tcp or fd", spec, kind)
	}
	if _, isTCP := l.Addr().(*net.TCPAddr); isTCP && allow != nil {
		l = &filterListener{Listener: l, allow: allow}
	}
	return l, nil
}

// InheritedListener returns the listening socket on fd 0
// (FCGI_LISTENSOCK_FILENO), as mod_fcgid and spawn-fcgi pass it, or false
// when fd 0 is not one. When it is a tcp socket, the comma-separated IPs
// of the environment variable FCGI_WEB_SERVER_ADDRS restrict its peers as
// ListenConfig.WebServerAddrs does; invalid entries are skipped, and a
// variable with no valid entry admits no peer at all.
func InheritedListener() (net.Listener, bool) {
	if !isListening(0) {
		return nil, false
	}
	var cfg ListenConfig
	if env := os.Getenv("FCGI_WEB_SERVER_ADDRS"); strings.TrimSpace(env) != "" {
		for _, a := range strings.Split(env, ",") {
			a = strings.TrimSpace(a)
			if _, err := parseAllowed([]string{a}); err == nil && a != "" {
				cfg.WebServerAddrs = append(cfg.WebServerAddrs, a)
			}
		}
		if len(cfg.WebServerAddrs) == 0 {
			cfg.WebServerAddrs = []string{"0.0.0.0/32"} // nobody connects from there
		}
	}
	l, err := Listen("fd:0", cfg)
	if err != nil {
		return nil, false
	}
	return l, true
}

// SystemdListeners returns the listening sockets passed by systemd socket
// activation (the sd_listen_fds protocol): LISTEN_FDS descriptors from fd 3
// on, when LISTEN_PID is this process. LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES are removed from the environment, so that the worker
// processes do not take them for theirs, and the descriptors are made
// close-on-exec. None passed: nil, nil. A passed descriptor that is not a
// listening socket is an error. tcp sockets are restricted to
// cfg.WebServerAddrs as Listen's are; SocketMode is not applied (the
// .socket unit's SocketMode is).
func SystemdListeners(cfg ListenConfig) ([]net.Listener, error) {
	pid, fds, names := os.Getenv("LISTEN_PID"), os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_FDNAMES")
	os.Unsetenv("LISTEN_PID")
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_FDNAMES")
	if pid == "" || fds == "" {
		return nil, nil
	}
	if p, err := strconv.Atoi(pid); err != nil || p != os.Getpid() {
		return nil, nil // meant for another process (a parent that exec'ed us without clearing them)
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("systemd socket activation: LISTEN_FDS=%q is not a number", fds)
	}
	allow, err := parseAllowed(cfg.WebServerAddrs)
	if err != nil {
		return nil, fmt.Errorf("systemd socket activation: %w", err)
	}
	nameOf := strings.Split(names, ":")
	const first = 3 // SD_LISTEN_FDS_START
	for fd := first; fd < first+n; fd++ {
		unix.CloseOnExec(fd)
	}
	var lns []net.Listener
	for i := 0; i < n; i++ {
		l, err := fdListener(first + i)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			what := "systemd socket activation"
			if i < len(nameOf) && nameOf[i] != "" {
				what += " (" + nameOf[i] + ")"
			}
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		if _, isTCP := l.Addr().(*net.TCPAddr); isTCP && allow != nil {
			l = &filterListener{Listener: l, allow: allow}
		}
		lns = append(lns, l)
	}
	return lns, nil
}

func isListening(fd int) bool {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v == 1
}

// fdListener wraps an inherited listening socket. The original descriptor
// is kept (and closed with the listener) so that fd N stays what it was.
func fdListener(fd int) (net.Listener, error) {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	switch {
	case errors.Is(err, unix.ENOTSOCK):
		return nil, fmt.Errorf("fd %d is not a socket", fd)
	case errors.Is(err, unix.EBADF):
		return nil, fmt.Errorf("fd %d is not open", fd)
	case err != nil:
		return nil, fmt.Errorf("fd %d: SO_ACCEPTCONN: %w", fd, err)
	case v != 1:
		return nil, fmt.Errorf("fd %d is a socket but not a listening one", fd)
	}
	f := os.NewFile(uintptr(fd), "fd:"+strconv.Itoa(fd))
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("fd %d: %w", fd, err)
	}
	return &fileListener{Listener: l, f: f}, nil
}

type fileListener struct {
	net.Listener
	f *os.File
}

func (l *fileListener) Close() error {
	err := l.Listener.Close()
	l.f.Close()
	return err
}

// listenUnix binds a unix socket, replacing only a stale socket file.
func listenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen unix:%s: exists and is not a socket; refusing to replace it", path)
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen unix:%s: another process is listening on it", path)
		} else if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("listen unix:%s: probing the existing socket: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen unix:%s: removing a stale socket: %w", path, err)
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen unix:%s: %w", path, err)
	}
	l.SetUnlinkOnClose(true)
	if mode != 0 {
		if err := os.Chmod(path, mode); err != nil {
			l.Close()
			return nil, fmt.Errorf("listen unix:%s: chmod %o: %w", path, mode, err)
		}
	}
	return l, nil
}

// filterListener admits only the peers of FCGI_WEB_SERVER_ADDRS.
type filterListener struct {
	net.Listener
	allow []netip.Prefix
}

func (l *filterListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		ip := ap.Addr().Unmap()
		for _, p := range l.allow {
			if p.Contains(ip) {
				return c, nil
			}
		}
	}
	c.Close()
	return nil, &RejectedError{Addr: c.RemoteAddr()}
}

// parseAllowed reads IPs and CIDR prefixes; nil means everyone.
func parseAllowed(addrs []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if p, err := netip.ParsePrefix(a); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return nil, fmt.Errorf("web server address %q is not an IP address or prefix", a)
		}
		ip = ip.Unmap()
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}

// Temporary lets generic accept loops (net/http) retry after a refusal.
func (e *RejectedError) Temporary() bool { return true }

// Timeout is part of net.Error.
func (e *RejectedError) Timeout() bool { return false }
