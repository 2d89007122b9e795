package bridge

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

var (
	// ErrAborted is returned by Request.Stdin reads and ResponseWriter
	// writes after FCGI_ABORT_REQUEST or the loss of the connection.
	ErrAborted = errors.New("fastcgi request aborted")
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("fastcgi server closed")
)

// Defaults for the zero values of Server's limits.
const (
	DefaultMaxConns       = 16384
	DefaultMaxReqs        = 1024
	DefaultMaxParamsBytes = 1 << 20
	DefaultMaxParams      = 1000
	DefaultStdinBuffer    = 1 << 20
	DefaultStdinMemory    = 64 << 20
	DefaultReadTimeout    = 30 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultWriteTimeout   = 5 * time.Minute
)

// Server is a FastCGI 1.0 application server. Its fields must not change
// once Serve has been called; the zero value of each limit means its default.
// One Server may Serve several listeners at once.
type Server struct {
	Handler Handler
	Log     zerolog.Logger
	// AcceptRole says which roles are served; nil means the responder
	// only. Other roles are answered with FCGI_UNKNOWN_ROLE at once.
	AcceptRole func(role uint16) bool
	// MaxConns is reported by FCGI_GET_VALUES and caps the open
	// connections. At the cap, the connection idle the longest is closed
	// to make room for a new one, as nginx reuses its idle keep-alive
	// connections when worker_connections run out; with none idle (every
	// connection has a request in progress), Accept waits and new
	// connections queue in the listen backlog. Reaching the cap is logged
	// at most once a minute. MaxReqs is reported too and caps the requests
	// in progress on one connection (more are FCGI_OVERLOADED).
	MaxConns, MaxReqs int
	MaxParamsBytes    int // name+value bytes per request
	MaxParams         int // pairs per request
	// StdinBuffer is how many unread STDIN bytes a request keeps in memory;
	// beyond that they are spooled to a file in SpoolDir. StdinMemory caps
	// the memory that all requests' unread STDIN takes together: when it
	// is spent, a request keeps 64 KiB in memory and spools the rest.
	StdinBuffer, StdinMemory int
	// SpoolDir holds the unlinked files that take STDIN beyond StdinBuffer
	// when a handler reads slower than the web server sends ("": os.TempDir()).
	SpoolDir string
	// ReadTimeout bounds a record once it has started, the PARAMS of a
	// request from its BEGIN_REQUEST, and the discarding of unread STDIN
	// before a connection is closed.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection with no request in progress that
	// sends nothing; it also bounds the wait for the next STDIN record.
	IdleTimeout time.Duration
	// WriteTimeout bounds one blocked write to the web server.
	WriteTimeout time.Duration
	// CutCause is the cause of the request contexts that Close (and a
	// Shutdown past its deadline) cancels; it should wrap ErrServerClosed,
	// which it defaults to. Handlers tell a cut request from a client gone.
	CutCause error

	once    sync.Once
	baseCtx context.Context
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed by Shutdown and Close
	active  atomic.Int64
	connSeq atomic.Uint64
	readers sync.Pool // *recordReader, reused across connections
	stdin   *stdinMemory
	poll    poller    // parked idle connections
	runners runners   // goroutines that ran handlers
	epoch   time.Time // of the poller's clock
	mu      sync.Mutex
	closing bool
	lns     map[net.Listener]struct{}
	conns   map[*conn]struct{} // served: not parked
	open    int                // connections, served and parked
	room    chan struct{}      // closed when a connection goes or parks, for a full Serve
	full    fullLog

	// draining: Shutdown has begun; new requests are refused (drain.go).
	draining atomic.Bool
}

// fullLog counts what MaxConns did since it was last logged.
type fullLog struct {
	logged         time.Time
	closed, waited int
}

func (s *Server) init() {
	s.once.Do(func() {
		s.baseCtx, s.cancel = context.WithCancelCause(context.Background())
		s.done = make(chan struct{})
		s.poll.s = s
		s.epoch = time.Now()
		s.lns = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
		s.stdin = newStdinMemory(orDefault(s.StdinBuffer, DefaultStdinBuffer), orDefault(s.StdinMemory, DefaultStdinMemory))
	})
}

func orDefault[T int | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

// clock is the time since the server started, at least 1 (0 means unset).
func (s *Server) clock() int64 { return max(int64(time.Since(s.epoch)), 1) }

// idleEnd is when the idle timeout closes a connection idle since then
// (on the clock).
func (s *Server) idleEnd(since int64) time.Time {
	return s.epoch.Add(time.Duration(since) + s.idleTimeout())
}

func (s *Server) maxConns() int               { return orDefault(s.MaxConns, DefaultMaxConns) }
func (s *Server) maxReqs() int                { return orDefault(s.MaxReqs, DefaultMaxReqs) }
func (s *Server) maxParamsBytes() int         { return orDefault(s.MaxParamsBytes, DefaultMaxParamsBytes) }
func (s *Server) maxParams() int              { return orDefault(s.MaxParams, DefaultMaxParams) }
func (s *Server) readTimeout() time.Duration  { return orDefault(s.ReadTimeout, DefaultReadTimeout) }
func (s *Server) idleTimeout() time.Duration  { return orDefault(s.IdleTimeout, DefaultIdleTimeout) }
func (s *Server) writeTimeout() time.Duration { return orDefault(s.WriteTimeout, DefaultWriteTimeout) }
func (s *Server) acceptRole(role uint16) bool {
	if s.AcceptRole == nil {
		return role == RoleResponder
	}
	return s.AcceptRole(role)
}

// Active reports the requests in progress, from BEGIN_REQUEST to END_REQUEST.
func (s *Server) Active() int { return int(s.active.Load()) }

// Serve accepts connections on l and serves each in its own goroutine. It
// blocks until Shutdown or Close (then it returns ErrServerClosed) or an
// accept error that is not temporary. Connections from peers refused by
// the listener (see RejectedError) are logged and do not stop Serve.
func (s *Server) Serve(l net.Listener) error {
	s.init()
	if !s.track(l) {
		return ErrServerClosed
	}
	defer s.untrack(l)
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isDone() {
				return ErrServerClosed
			}
			var rej *RejectedError
			if errors.As(err, &rej) {
				s.Log.Warn().Str("peer", rej.Addr.String()).Str("listen", l.Addr().String()).
					Msg("connection refused: peer not in web-server-addrs")
				continue
			}
			if ne, ok := err.(interface{ Temporary() bool }); ok && ne.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Log.Warn().Err(err).Dur("retry_in", backoff).Msg("accept failed")
				select {
				case <-time.After(backoff):
				case <-s.done:
					return ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("accept on %s: %w", l.Addr(), err)
		}
		backoff = 0
		if !s.makeRoom() {
			nc.Close()
			return ErrServerClosed
		}
		s.accepted(nc)
	}
}

// sendBuffer is the send buffer asked for a unix connection (the kernel
// caps it at net.core.wmem_max, doubled). With the default of 208 KiB, a
// 1 MiB response filled the socket five times, each time a write cut
// short, a wait for nginx to read and a wake-up: 1 MiB responses at 2×4
// ran 15–20% faster with it. It costs memory only while a response waits
// in it. TCP connections keep the kernel's autotuning.
const sendBuffer = 1 << 20

// accepted starts serving a connection just accepted and counted (by
// makeRoom): a reader goroutine when the web server has sent something
// already, else the socket parks straight away, so that a burst of
// connections that send nothing yet costs no goroutines.
func (s *Server) accepted(nc net.Conn) {
	seq := s.connSeq.Add(1)
	l := connLog{&s.Log, seq}
	l.Debug().Msg("connection opened")
	if uc, ok := nc.(*net.UnixConn); ok {
		// Errors leave the system's default, which works, only slower.
		_ = uc.SetWriteBuffer(sendBuffer)
	}
	if !readableNow(nc) && s.poll.park(nc, seq, 0) {
		nc.Close()
		return
	}
	if c := s.adopt(nc, seq); c != nil {
		go c.read()
	}
}

// adopt makes a conn to serve a connection (new, or leaving the poller);
// nil when the server is closing, and then the connection is closed.
func (s *Server) adopt(nc net.Conn, seq uint64) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		nc.Close()
		s.connEndedLocked()
		return nil
	}
	c := newConn(s, nc, seq)
	s.conns[c] = struct{}{}
	return c
}

// detach forgets a conn whose socket went to the poller.
func (s *Server) detach(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.roomFreedLocked()
	s.mu.Unlock()
}

// connEnded counts a parked connection closed.
func (s *Server) connEnded() {
	s.mu.Lock()
	s.connEndedLocked()
	s.mu.Unlock()
}

func (s *Server) connEndedLocked() {
	s.open--
	s.roomFreedLocked()
}

// makeRoom counts one more connection once it may be served: below
// MaxConns, or after closing the connection parked the longest; with none
// parked it waits for a connection to end or park (and Serve accepts no
// more meanwhile). False when the server closes.
func (s *Server) makeRoom() bool {
	for {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return false
		}
		if s.open < s.maxConns() {
			s.open++
			s.mu.Unlock()
			return true
		}
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		s.mu.Unlock()
		if s.poll.closeOldest() {
			s.noteFull(true)
			continue
		}
		s.noteFull(false)
		select {
		case <-room:
		case <-s.done:
			return false
		}
	}
}

// noteFull counts a connection closed (or a wait) at MaxConns and logs
// the counts at most once a minute, rather than once per connection.
func (s *Server) noteFull(closed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if closed {
		s.full.closed++
	} else {
		s.full.waited++
	}
	if now := time.Now(); now.Sub(s.full.logged) >= time.Minute {
		s.Log.Warn().Int("max_connections", s.maxConns()).
			Int("idle_closed", s.full.closed).Int("waits", s.full.waited).
			Msg("max-connections reached: idle keep-alive connections are closed to make room; with none idle, new connections wait in the listen backlog")
		s.full = fullLog{logged: now}
	}
}

// roomFreedLocked wakes a Serve waiting at MaxConns.
func (s *Server) roomFreedLocked() {
	if s.room != nil {
		close(s.room)
		s.room = nil
	}
}

func (s *Server) isDone() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.lns[l] = struct{}{}
	return true
}

func (s *Server) untrack(l net.Listener) {
	s.mu.Lock()
	delete(s.lns, l)
	s.mu.Unlock()
}

// closeListenersLocked stops accepting; the first error is returned.
func (s *Server) closeListenersLocked() error {
	var first error
	for l := range s.lns {
		if err := l.Close(); err != nil && first == nil && !errors.Is(err, net.ErrClosed) {
			first = fmt.Errorf("close listener %s: %w", l.Addr(), err)
		}
		delete(s.lns, l)
	}
	return first
}

// Shutdown closes idle connections and waits for the requests in flight,
// while new ones are refused (see drain.go); busy keep-alive connections
// are closed once their requests end. Then it stops accepting and waits
// for the connections to close. When ctx is done first, every request
// context is cancelled (cause ErrServerClosed), every connection closed,
// and ctx.Err() returned.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, c := range s.startDraining() {
		c.shutdown()
	}
	s.poll.close() // nothing parks any more: every connection closes when idle
	if !s.waitIdle(ctx.Done()) {
		s.Close()
		return ctx.Err()
	}
	conns, err := s.stopAccepting()
	for _, c := range conns {
		c.shutdown()
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := s.open
		s.mu.Unlock()
		if n == 0 && s.Active() == 0 {
			s.runners.close()
			return err
		}
		select {
		case <-ctx.Done():
			s.Close()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// stopAccepting closes the listeners and returns the open connections.
func (s *Server) stopAccepting() ([]*conn, error) {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		s.closing = true
		close(s.done)
	}
	err := s.closeListenersLocked()
	return s.connsLocked(), err
}

// connsLocked lists the connections being served (not parked).
func (s *Server) connsLocked() []*conn {
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Close stops accepting, cancels every request context and closes every
// connection at once. Handlers still running see ErrAborted.
func (s *Server) Close() error {
	conns, err := s.stopAccepting()
	s.cancel(cmp.Or(s.CutCause, ErrServerClosed)) // requests were cut, no client left
	for _, c := range conns {
		c.close()
	}
	s.poll.close()
	s.runners.close()
	return err
}

// removeConn forgets a conn whose connection ended.
func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.connEndedLocked()
	s.mu.Unlock()
}
