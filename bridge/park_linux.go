package bridge

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// peekReady is false while a read would block: true with data, at the end
// of the stream, and on errors (the next read reports them). It is
// recv(MSG_PEEK) of one byte without the address that unix.Recvfrom asks
// for and allocates.
func peekReady(fd uintptr) bool {
	var b [1]byte
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return e != unix.EAGAIN
}

// poller holds the parked connections of a Server: idle keep-alive
// connections with no goroutine, as nginx keeps its own (see keepalive).
//
// A parked connection is a bare descriptor: parking duplicates the
// socket's descriptor and closes the net.Conn, which gives back Go's
// per-socket state too (the netFD and its addresses, the runtime's
// pollDesc with its two deadline timers, the writev vector: about 700
// bytes), so that what stays is the kernel's socket, one descriptor and a
// 48-byte record. Resuming serves the descriptor itself again
// (rawio.FileConn). This costs about eight system calls per park and
// resume, which a connection pays only after idleLinger without a request.
//
// The parked descriptor is in an epoll set of our own with EPOLLONESHOT
// (level-triggered, so data that came before the registration reports,
// and one event disarms it), its event carrying the connection's number.
// The epoll descriptor is non-blocking and registered with Go's poller
// through an os.File, so that one goroutine waits on it without holding a
// thread, with a read deadline that is the earliest idle timeout. While
// parked, the socket is in no other epoll set (Go's registration went with
// the net.Conn), and it is removed from ours before its descriptor is
// closed or handed to the new net.Conn. An event for a connection no
// longer parked finds nothing under its number and is ignored.
type poller struct {
	s          *Server
	mu         sync.Mutex
	started    bool
	closed     bool
	failed     error // the epoll set could not be made: nothing parks
	epfd       int
	f          *os.File // epfd, in Go's poller
	rc         syscall.RawConn
	byID       map[uint64]*parked
	head, tail *parked   // by until (ordered on insert)
	warned     time.Time // last "cannot park" warning: one a minute at most
	unwarned   int       // failures since
}

// parked is what is left of a connection while it is parked.
type parked struct {
	fd         int
	seq        uint64
	until      time.Duration // idle timeout, on the server's epoch
	idleSince  time.Duration // idle since, on the epoch (Server.clock); 0: new
	prev, next *parked
}

// startLocked makes the epoll set and its goroutine on first use.
func (p *poller) startLocked() error {
	if p.started {
		return p.failed
	}
	p.started = true
	fail := func(err error) error {
		p.failed = err
		p.s.Log.Warn().Err(err).Msg("idle connections cannot be parked; each keeps a goroutine")
		return err
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fail(os.NewSyscallError("epoll_create1", err))
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fail(os.NewSyscallError("fcntl", err))
	}
	f := os.NewFile(uintptr(fd), "wsgifcgi-idle-epoll")
	if err := f.SetReadDeadline(time.Time{}); err != nil { // not in Go's poller
		f.Close()
		return fail(err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return fail(err)
	}
	p.epfd, p.f, p.rc = fd, f, rc
	p.byID = make(map[uint64]*parked)
	go p.run()
	return nil
}

// park puts a connection's socket, idle since then (on Server.clock; 0:
// new, it never had a request), in the poller until it becomes readable
// or its idle timeout. On success the caller must close nc (the poller has
// its own descriptor of the socket). False when it cannot be (the server
// stopped, no epoll), and then the caller keeps serving it.
func (p *poller) park(nc net.Conn, seq uint64, since int64) bool {
	rc := rawio.SyscallConn(nc)
	if rc == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.startLocked() != nil {
		return false
	}
	fd, err := -1, error(nil)
	if cerr := rc.Control(func(sfd uintptr) {
		fd, err = rawio.Dup(int(sfd))
	}); cerr != nil {
		return false // closed meanwhile
	}
	if err == nil {
		ev := unix.EpollEvent{
			Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
			Fd:     int32(uint32(seq)),
			Pad:    int32(uint32(seq >> 32)),
		}
		if err = rawio.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			rawio.Close(fd)
		}
	}
	if err != nil {
		// EMFILE at the open-file limit, say. The connection is served as
		// before meanwhile.
		p.warnLocked(seq, err, "cannot park idle connections; they keep their goroutine")
		return false
	}
	pc := &parked{fd: fd, seq: seq, idleSince: time.Duration(since)}
	if since == 0 {
		since = p.s.clock()
	}
	pc.until = p.s.idleEnd(since).Sub(p.s.epoch)
	p.byID[seq] = pc
	p.insertLocked(pc)
	if p.head == pc {
		p.armLocked()
	}
	return true
}

// warnLocked logs a failure once a minute at most, not once per
// connection, with the number of failures since the last warning.
func (p *poller) warnLocked(seq uint64, err error, msg string) {
	p.unwarned++
	if now := time.Now(); now.Sub(p.warned) >= time.Minute {
		connLog{&p.s.Log, seq}.Warn().Err(err).Int("failures", p.unwarned).Msg(msg)
		p.warned, p.unwarned = now, 0
	}
}

// insertLocked links pc in until order, from the tail: connections park
// in nearly that order already.
func (p *poller) insertLocked(pc *parked) {
	at := p.tail
	for at != nil && at.until > pc.until {
		at = at.prev
	}
	pc.prev = at
	if at == nil {
		pc.next, p.head = p.head, pc
	} else {
		pc.next, at.next = at.next, pc
	}
	if pc.next == nil {
		p.tail = pc
	} else {
		pc.next.prev = pc
	}
}

// removeLocked takes pc out of the list; its epoll registration stays (to
// go with the descriptor, or be removed by resume).
func (p *poller) removeLocked(pc *parked) {
	if pc.prev == nil {
		p.head = pc.next
	} else {
		pc.prev.next = pc.next
	}
	if pc.next == nil {
		p.tail = pc.prev
	} else {
		pc.next.prev = pc.prev
	}
	pc.prev, pc.next = nil, nil
	delete(p.byID, pc.seq)
}

// armLocked sets the wake-up for the earliest idle timeout. A deadline
// that fires early (its connection left) finds nothing due and re-arms.
func (p *poller) armLocked() {
	if p.f == nil {
		return
	}
	var d time.Time
	if p.head != nil {
		d = p.s.epoch.Add(p.head.until)
	}
	_ = p.f.SetReadDeadline(d)
}

// closeParked closes a socket taken out of the poller. Its epoll
// registration goes with the last descriptor of the socket, which this is.
func (p *poller) closeParked(pc *parked, why string) {
	connLog{&p.s.Log, pc.seq}.Debug().Msg(why)
	rawio.Close(pc.fd)
	p.s.connEnded()
}

// resume serves a connection that left the poller readable: a net.Conn
// is made of its descriptor, and a new reader reads it.
func (p *poller) resume(pc *parked) {
	nc, err := rawio.FileConn(pc.fd)
	if err != nil {
		p.mu.Lock()
		p.warnLocked(pc.seq, err, "cannot resume idle connections; closed")
		p.mu.Unlock()
		p.s.connEnded()
		return
	}
	if c := p.s.adopt(nc, pc.seq); c != nil {
		if pc.idleSince > 0 { // c runs nothing yet
			c.ka.linger = nextLinger(time.Since(p.s.epoch) - pc.idleSince)
		}
		c.read()
	}
}

// closeOldest closes the connection parked the longest; false when none is.
func (p *poller) closeOldest() bool {
	p.mu.Lock()
	pc := p.head
	if pc != nil {
		p.removeLocked(pc)
	}
	p.mu.Unlock()
	if pc == nil {
		return false
	}
	p.closeParked(pc, "idle connection closed to make room (max-connections)")
	return true
}

// close stops parking: the parked connections are closed, and the
// goroutine ends.
func (p *poller) close() {
	p.mu.Lock()
	p.closed = true
	var left []*parked
	for pc := p.head; pc != nil; pc = p.head {
		p.removeLocked(pc)
		left = append(left, pc)
	}
	f := p.f
	p.f = nil
	p.mu.Unlock()
	for _, pc := range left {
		p.closeParked(pc, "idle connection closed (server stopping)")
	}
	if f != nil {
		f.Close()
	}
}

// run waits for events and idle timeouts until the poller is closed.
func (p *poller) run() {
	events := make([]unix.EpollEvent, 128)
	for {
		err := p.rc.Read(func(fd uintptr) bool {
			for {
				n, err := unix.EpollWait(int(fd), events, 0)
				if err == unix.EINTR {
					continue
				}
				if n > 0 {
					p.wake(events[:n])
				}
				if n < len(events) {
					return false // drained: wait in Go's poller
				}
			}
		})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return // closed
		}
		p.expire()
	}
}

// wake serves the connections that became readable (or hung up), each
// in a goroutine of its own.
func (p *poller) wake(events []unix.EpollEvent) {
	var ready []*parked
	p.mu.Lock()
	for _, e := range events {
		seq := uint64(uint32(e.Fd)) | uint64(uint32(e.Pad))<<32
		if pc := p.byID[seq]; pc != nil {
			p.removeLocked(pc)
			// Out of our set before the descriptor is closed: the
			// socket lives on in the new net.Conn's descriptor, and
			// with it a registration left behind.
			_ = rawio.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, pc.fd, nil)
			ready = append(ready, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range ready {
		go p.resume(pc)
	}
}

// expire closes the parked connections whose idle timeout has passed.
func (p *poller) expire() {
	now := time.Since(p.s.epoch)
	var due []*parked
	p.mu.Lock()
	for pc := p.head; pc != nil && pc.until <= now; pc = p.head {
		p.removeLocked(pc)
		due = append(due, pc)
	}
	p.armLocked()
	p.mu.Unlock()
	for _, pc := range due {
		p.closeParked(pc, "idle connection closed")
	}
}
