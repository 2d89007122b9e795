package rawio

import (
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxIOV is what one writev takes (IOV_MAX).
const maxIOV = 1024

// atFDCWD is AT_FDCWD (-100) as a system call argument.
var atFDCWD = func() uintptr { fd := unix.AT_FDCWD; return uintptr(fd) }()

// NewReader reads r's descriptor directly, or is r itself when r has no
// non-blocking descriptor of the poller (a net.Pipe in a test).
func NewReader(r io.Reader) io.Reader {
	rc := rawConnOf(r)
	if rc == nil {
		return r
	}
	d := &reader{rc: rc}
	d.call = d.read
	return d
}

// NewWriter writes w's descriptor directly (falling back as NewReader).
func NewWriter(w io.Writer) Writer {
	rc := rawConnOf(w)
	if rc == nil {
		return &plainWriter{w: w}
	}
	d := &writer{rc: rc}
	d.call = d.writev
	return d
}

// rawConnOf is x's descriptor if it is non-blocking, so in the poller.
func rawConnOf(x any) syscall.RawConn {
	rc := SyscallConn(x)
	if rc == nil {
		return nil
	}
	switch x.(type) {
	case *net.UnixConn, *net.TCPConn, *sockFile:
		return rc // package net's sockets and FileConn's always are
	}
	nonblock := false
	if err := rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nonblock = err == nil && fl&unix.O_NONBLOCK != 0
	}); err != nil || !nonblock {
		return nil
	}
	return rc
}

// reader is one goroutine's reader: the state of the call under way lives
// in it, so that the callback given to the poller is made once.
type reader struct {
	rc    syscall.RawConn
	call  func(fd uintptr) bool
	p     []byte
	n     int
	errno syscall.Errno
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r.p, r.n, r.errno = p, 0, 0
	err := r.rc.Read(r.call)
	r.p = nil
	switch {
	case err != nil:
		return 0, err
	case r.errno != 0:
		return 0, os.NewSyscallError("read", r.errno)
	case r.n == 0:
		return 0, io.EOF
	}
	return r.n, nil
}

// read is the poller's callback: false asks it to wait for readability.
func (r *reader) read(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.p[0])), uintptr(len(r.p)))
		switch e {
		case 0:
			r.n = int(n)
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			r.errno = e
			return true
		}
	}
}

// writer is one goroutine's writer at a time (its callers serialise).
type writer struct {
	rc    syscall.RawConn
	call  func(fd uintptr) bool
	one   [1][]byte
	bufs  [][]byte
	iov   []unix.Iovec
	done  int64
	errno syscall.Errno
}

func (w *writer) Write(p []byte) (int, error) {
	w.one[0] = p
	n, err := w.WriteVec(w.one[:])
	w.one[0] = nil
	return int(n), err
}

func (w *writer) WriteVec(bufs [][]byte) (int64, error) {
	w.bufs, w.done, w.errno = bufs, 0, 0
	err := w.rc.Write(w.call)
	w.bufs = nil
	clear(w.iov[:cap(w.iov)]) // drop the references to the caller's memory
	switch {
	case err != nil:
		return w.done, err
	case w.errno != 0:
		return w.done, os.NewSyscallError("writev", w.errno)
	}
	return w.done, nil
}

// writev is the poller's callback: false asks it to wait for room.
func (w *writer) writev(fd uintptr) bool {
	for {
		iov := w.iov[:0]
		for _, b := range w.bufs {
			if len(iov) == maxIOV {
				break
			}
			if len(b) > 0 {
				v := unix.Iovec{Base: &b[0]}
				v.SetLen(len(b))
				iov = append(iov, v)
			}
		}
		w.iov = iov
		if len(iov) == 0 {
			return true
		}
		n, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		switch e {
		case 0:
			w.done += int64(n)
			w.bufs = Consume(w.bufs, int(n))
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			w.errno = e
			return true
		}
	}
}

// Stat is os.Stat (following symbolic links) for routing.
func Stat(path string) (Info, error) { return statx(path, "stat", 0) }

// Lstat is os.Lstat for routing.
func Lstat(path string) (Info, error) { return statx(path, "lstat", unix.AT_SYMLINK_NOFOLLOW) }

func statx(path, op string, flags uintptr) (Info, error) {
	// A script's path fits the stack: no allocation per request.
	var buf [256]byte
	var p *byte
	if len(path) < len(buf) && strings.IndexByte(path, 0) < 0 {
		copy(buf[:], path)
		p = &buf[0]
	} else {
		var err error
		if p, err = unix.BytePtrFromString(path); err != nil {
			return Info{}, &fs.PathError{Op: op, Path: path, Err: err}
		}
	}
	var st unix.Statx_t
	for {
		_, _, e := unix.RawSyscall6(unix.SYS_STATX, atFDCWD, uintptr(unsafe.Pointer(p)),
			unix.AT_STATX_SYNC_AS_STAT|flags, unix.STATX_TYPE|unix.STATX_MTIME, uintptr(unsafe.Pointer(&st)), 0)
		switch e {
		case 0:
			return Info{Mode: fileType(st.Mode), Mtime: st.Mtime.Sec*1e9 + int64(st.Mtime.Nsec)}, nil
		case unix.EINTR:
		case unix.ENOSYS: // a kernel before 4.11
			stat := os.Stat
			if flags != 0 {
				stat = os.Lstat
			}
			fi, err := stat(path)
			if err != nil {
				return Info{}, err
			}
			return Info{Mode: fi.Mode().Type(), Mtime: fi.ModTime().UnixNano()}, nil
		default:
			return Info{}, &fs.PathError{Op: op, Path: path, Err: e}
		}
	}
}

// fileType maps the type bits of st_mode as os does.
func fileType(m uint16) fs.FileMode {
	switch uint32(m) & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	default:
		return fs.ModeDevice
	}
}
