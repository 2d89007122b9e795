package bridge

import "time"

// Draining (Shutdown). The listeners stay open while the requests in
// flight finish, and a request that comes meanwhile is answered at once
// with a 503 page and FCGI_OVERLOADED: a web server that finds the socket
// gone reports a connect error (nginx: a 502 with "No such file or
// directory") instead, and one with fastcgi_next_upstream http_503 sends
// the request to another host either way.

// refusedPage is the answer to a request that comes while draining.
const refusedPage = "Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n\r\nserver shutting down\n"

// startDraining makes new requests refused and returns the connections
// being served.
func (s *Server) startDraining() []*conn {
	s.init()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining.Store(true)
	return s.connsLocked()
}

// refuse answers a request begun while draining, once its PARAMS are in
// (the web server may still be sending them; STDIN is discarded).
func (c *conn) refuse(r *request) {
	c.log.Info().Uint16("id", r.ID).Msg("server shutting down: request refused with 503 (FCGI_OVERLOADED)")
	r.raw.Reset()
	_ = c.end(r, []byte(refusedPage), EndStatus{ProtocolStatus: StatusOverloaded})
}

// waitIdle waits until no request accepted before draining is in
// progress and no handler runs (a request is no longer active once its
// end is decided, before its last records are written); false when done
// is closed first.
func (s *Server) waitIdle(done <-chan struct{}) bool {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for s.Active() > 0 || s.handlersRunning() {
		select {
		case <-done:
			return false
		case <-tick.C:
		}
	}
	return true
}

// handlersRunning reports whether a handler runs on any connection.
func (s *Server) handlersRunning() bool {
	s.mu.Lock()
	conns := s.connsLocked()
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		n := c.handlers
		c.mu.Unlock()
		if n > 0 {
			return true
		}
	}
	return false
}
