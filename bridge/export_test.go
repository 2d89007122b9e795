package bridge

import "net"

// newConn registers a connection as Serve's accept loop does, for tests that
// serve one end of a net.Pipe or socketpair; nil when the server is closing.
func (s *Server) newConn(nc net.Conn) *conn {
	s.init()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return nil
	}
	s.open++
	s.mu.Unlock()
	return s.adopt(nc, s.connSeq.Add(1))
}

// serve runs the reader of a new connection in the calling goroutine until
// the connection ends or parks.
func (c *conn) serve() { c.read() }

// bufCap is the capacity of the pipe's memory buffer. It only grows until
// the handler returns, so a handler that has read to the end sees the
// largest buffer the pipe allocated.
func (p *stdinPipe) bufCap() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return cap(p.buf)
}
