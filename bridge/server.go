package bridge

import (
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
	DefaultMaxConns       = 1024
	DefaultMaxReqs        = 1024
	DefaultMaxParamsBytes = 1 << 20
	DefaultMaxParams      = 1000
	DefaultStdinBuffer    = 256 << 10
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
	// MaxConns is reported by FCGI_GET_VALUES and caps the concurrent
	// connections (Accept waits). MaxReqs is reported too and caps the
	// requests in progress on one connection (more are FCGI_OVERLOADED).
	MaxConns, MaxReqs int
	MaxParamsBytes    int // name+value bytes per request
	MaxParams         int // pairs per request
	// StdinBuffer is how many unread STDIN bytes a request keeps in memory;
	// beyond that they are spooled to a file in SpoolDir.
	StdinBuffer int
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

	once    sync.Once
	baseCtx context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed by Shutdown and Close
	slots   chan struct{} // MaxConns semaphore
	active  atomic.Int64
	connSeq atomic.Uint64
	readers sync.Pool // *recordReader, reused across connections
	mu      sync.Mutex
	closing bool
	lns     map[net.Listener]struct{}
	conns   map[*conn]struct{}
}

func (s *Server) init() {
	s.once.Do(func() {
		s.baseCtx, s.cancel = context.WithCancel(context.Background())
		s.done = make(chan struct{})
		s.slots = make(chan struct{}, s.maxConns())
		s.lns = make(map[net.Listener]struct{})
		s.conns = make(map[*conn]struct{})
	})
}

func orDefault[T int | time.Duration](v, d T) T {
	if v > 0 {
		return v
	}
	return d
}

func (s *Server) maxConns() int               { return orDefault(s.MaxConns, DefaultMaxConns) }
func (s *Server) maxReqs() int                { return orDefault(s.MaxReqs, DefaultMaxReqs) }
func (s *Server) maxParamsBytes() int         { return orDefault(s.MaxParamsBytes, DefaultMaxParamsBytes) }
func (s *Server) maxParams() int              { return orDefault(s.MaxParams, DefaultMaxParams) }
func (s *Server) stdinBuffer() int            { return orDefault(s.StdinBuffer, DefaultStdinBuffer) }
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
		select {
		case s.slots <- struct{}{}:
		case <-s.done:
			return ErrServerClosed
		}
		nc, err := l.Accept()
		if err != nil {
			<-s.slots
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
		c := s.newConn(nc)
		if c == nil {
			<-s.slots
			return ErrServerClosed
		}
		go func() {
			defer func() { <-s.slots }()
			c.serve()
		}()
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

// Shutdown stops accepting, closes idle connections and waits for the
// requests in flight; busy keep-alive connections are closed once their
// requests end. When ctx is done first, every request context is
// cancelled, every connection closed, and ctx.Err() returned.
func (s *Server) Shutdown(ctx context.Context) error {
	conns, err := s.stopAccepting()
	for _, c := range conns {
		c.shutdown()
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 && s.Active() == 0 {
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
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns, err
}

// Close stops accepting, cancels every request context and closes every
// connection at once. Handlers still running see ErrAborted.
func (s *Server) Close() error {
	conns, err := s.stopAccepting()
	s.cancel()
	for _, c := range conns {
		c.close()
	}
	return err
}

// newConn registers a connection; nil when the server is closing.
func (s *Server) newConn(nc net.Conn) *conn {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		nc.Close()
		return nil
	}
	c := newConn(s, nc, s.connSeq.Add(1))
	s.conns[c] = struct{}{}
	return c
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}
