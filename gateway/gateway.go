// Package gateway joins the pieces: it serves each FastCGI request (bridge) by
// routing it (groups), building its WSGI environ and running it on the pool of
// its process group and application group (groups/pool, pyworker).
package gateway

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/groups/pool"
	"github.com/wsgifcgi/wsgifcgi/metrics"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// Gateway is the bridge.Handler of the server. Its configuration and pools
// can be replaced while it serves (Reload).
type Gateway struct {
	log     zerolog.Logger
	state   atomic.Pointer[state]
	reqSeq  atomic.Uint64
	idBase  string
	envPool sync.Pool
	digest  *digestAuth
	auth    authCaller
	metrics *metrics.Metrics // nil: none
}

// Option configures New.
type Option func(*Gateway)

// WithMetrics makes the gateway report its requests and its pools' workers to m.
func WithMetrics(m *metrics.Metrics) Option { return func(g *Gateway) { g.metrics = m } }

// state is one generation of configuration with its pools.
type state struct {
	cfg   *groups.Config
	pools *pools
}

// New builds a gateway for cfg; pools start lazily, except those that
// import scripts, which start now so the scripts load before any request.
func New(cfg *groups.Config, log zerolog.Logger, opts ...Option) (*Gateway, error) {
	g := &Gateway{log: log, idBase: strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "."}
	for _, o := range opts {
		o(g)
	}
	g.envPool.New = func() any { return new(pyworker.Environ) }
	g.digest = newDigestAuth()
	g.auth = workerAuth{g}
	st, err := g.newState(cfg, nil)
	if err != nil {
		return nil, err
	}
	g.state.Store(st)
	return g, nil
}

func (g *Gateway) newState(cfg *groups.Config, old *pools) (*state, error) {
	ps, err := newPools(cfg, g.log, old, g.metrics)
	if err != nil {
		return nil, err
	}
	return &state{cfg: cfg, pools: ps}, nil
}

// Reload switches to cfg. Pools whose settings did not change are kept; the
// others are replaced, the old ones finishing their requests in the background.
func (g *Gateway) Reload(cfg *groups.Config) error {
	old := g.state.Load()
	st, err := g.newState(cfg, old.pools)
	if err != nil {
		return err
	}
	g.state.Store(st)
	drop := old.pools.handOver(st.pools)
	go closePools(drop)
	return nil
}

// Restart replaces every worker process gracefully (SIGUSR1).
func (g *Gateway) Restart() { g.state.Load().pools.restart() }

// Close stops every pool; in-flight requests finish first.
func (g *Gateway) Close() { g.state.Load().pools.closeAll() }

// ServeFCGI implements bridge.Handler for the responder role.
func (g *Gateway) ServeFCGI(w bridge.ResponseWriter, r *bridge.Request) bridge.EndStatus {
	start := time.Now()
	g.metrics.RequestStarted()
	rl := &requestLog{start: start, id: g.idBase + strconv.FormatUint(g.reqSeq.Add(1), 36)}
	var status int
	if isAuthorizerRequest(r) {
		status = g.serveAuthorizer(w, r, rl)
	} else {
		status = g.serve(w, r, rl)
	}
	g.accessLog(r, rl, status)
	if g.metrics != nil {
		group := "" // not routed
		if rl.route != nil {
			group = groupLabel(rl.route.ProcessGroup)
		}
		g.metrics.RequestDone(group, status, time.Since(start))
	}
	if errors.Is(rl.err, pool.ErrOverloaded) {
		// nginx ignores the protocol status and shows the 503 page already
		// sent; a front end that reads it learns the queue is full.
		return bridge.EndStatus{ProtocolStatus: bridge.StatusOverloaded}
	}
	return bridge.EndStatus{}
}

// requestLog gathers what the access log line reports.
type requestLog struct {
	start time.Time
	id    string
	route *groups.Route
	pid   int
	bytes int64
	err   error
}

// Run puts the request's names on each event logged about it: a hook
// rather than a child logger, whose context buffer costs 500 bytes per
// request.
func (rl *requestLog) Run(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str("request_id", rl.id)
	if rt := rl.route; rt != nil {
		e.Str("process_group", rt.ProcessGroup).Str("application_group", rt.ApplicationGroup)
	}
}

func (g *Gateway) serve(w bridge.ResponseWriter, r *bridge.Request, rl *requestLog) int {
	ps := params(r.Params)
	st := g.state.Load()
	rt, err := st.cfg.Route(ps)
	if err != nil {
		rl.err = err
		return writeError(w, routeStatus(err))
	}
	rl.route = rt

	v := g.accessControl(r.Context(), ps, rt)
	if v.status != 0 {
		rl.err = v.err
		return writeDenied(w, v)
	}
	if err := st.pools.access.check(st.pools, rt, rl.start); err != nil {
		// The bridge may read what the worker's user cannot (as root it
		// reads anything): a 403 that says who cannot read what.
		rl.err = err
		return writeError(w, 403)
	}

	body, status := requestBody(r, st.cfg.Server.ChunkedRequest)
	if status != 0 {
		abandonBody(r, body)
		return writeError(w, status)
	}
	var bodyIn io.Reader // nil: no body
	if body != nil {
		if err := awaitBody(r, rt.Daemon, body.length); err != nil {
			rl.err = err
			return writeError(w, cmp.Or(bodyStatus(err, true), 500))
		}
		body.lend(r, st.pools.lend)
		bodyIn = body
	}

	env := g.envPool.Get().(*pyworker.Environ)
	defer func() { env.Reset(); g.envPool.Put(env) }()

	for attempt := 0; ; attempt++ {
		p, err := st.pools.get(rt)
		if err != nil {
			rl.err = err
			return writeError(w, 500)
		}
		env.Reset()
		meta := wsgiMeta{requestID: rl.id, requestStart: rl.start.UnixMicro(), daemon: rt.ProcessGroup != "", restarts: p.Restarts(),
			remoteUser: v.user, authType: v.authType}
		if !buildEnviron(env, r.Params, rt, environOptions{trustRemoteUser: st.cfg.Server.TrustRemoteUser}, meta) {
			rl.err = errors.New("a FastCGI param holds a NUL byte")
			return writeError(w, 400)
		}
		out := &sink{w: w}
		call := &pyworker.Call{Environ: env, ScriptMTime: rt.ScriptMTime, Body: bodyIn, Out: out,
			Log: g.log.Hook(rl)}
		res, pid, err := p.Serve(r.Context(), call)
		rl.pid, rl.bytes = pid, res.BytesOut
		if errors.Is(err, pool.ErrClosed) && attempt < 3 {
			// The pool was replaced by a reload between routing and dispatch:
			// the request has not reached a worker, so take the new one.
			st = g.state.Load()
			continue
		}
		if err == nil {
			if ferr := out.flush(); ferr != nil {
				rl.err = ferr
			}
			if berr := body.failure(); berr != nil {
				rl.err = berr // the application went on without the rest
			}
			return res.Status
		}
		rl.err = err
		if res.HeadersSent {
			// Too late for an error page: the response ends short, which the
			// front end sees as a truncated upstream response.
			_ = out.flush()
			return res.Status
		}
		code := statusFor(err)
		if berr := body.failure(); berr != nil && code != 504 {
			// The body's failure is what failed the application.
			rl.err = fmt.Errorf("%w (application: %v)", berr, err)
			code = cmp.Or(bodyStatus(berr, true), code)
		}
		if cutByShutdown(r) {
			rl.err, code = fmt.Errorf("request cut by shutdown: still running when shutdown-timeout passed (%w)", err), 503
		}
		abandonBody(r, body)
		return writeError(w, code)
	}
}

// routeStatus is the status of a routing failure.
func routeStatus(err error) int {
	var re *groups.RouteError
	if errors.As(err, &re) {
		return re.Status
	}
	return 500
}

// statusFor maps a failure before the response started to its HTTP status.
func statusFor(err error) int {
	switch {
	case errors.Is(err, pyworker.ErrNotFound):
		return 404
	case errors.Is(err, pyworker.ErrWorkerLost):
		return 502
	case errors.Is(err, pool.ErrRequestTimeout):
		return 504
	case errors.Is(err, pool.ErrOverloaded), errors.Is(err, pool.ErrQueueTimeout), errors.Is(err, pool.ErrUnavailable),
		errors.Is(err, pool.ErrClosed), errors.Is(err, pyworker.ErrClosed):
		return 503
	case errors.Is(err, context.Canceled), errors.Is(err, pyworker.ErrAborted):
		return 499 // client gone; nothing reaches it, but the log says so
	default:
		return 500
	}
}

// cutByShutdown reports a request whose context the server cancelled
// because shutdown-timeout passed: no client went away.
func cutByShutdown(r *bridge.Request) bool {
	return errors.Is(context.Cause(r.Context()), bridge.ErrServerClosed)
}

// requestBody is the body reader for the worker (nil: no body). A request
// without CONTENT_LENGTH but with a body is a 411 unless chunked-request
// is on.
func requestBody(r *bridge.Request, chunked bool) (*body, int) {
	if cl, ok := params(r.Params).Get("CONTENT_LENGTH"); ok && !unknownLength(cl) {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil || n < 0 {
			return nil, 400
		}
		return newBody(r.Stdin, n), 0
	}
	var one [1]byte
	n, _ := io.ReadFull(r.Stdin, one[:])
	if n == 0 {
		return nil, 0
	}
	b := newBody(io.MultiReader(bytes.NewReader(one[:n]), r.Stdin), -1)
	if !chunked {
		return b, 411
	}
	return b, 0
}

// unknownLength reports a CONTENT_LENGTH that gives no length: empty, or
// "-1", which Caddy's fastcgi transport sends for a body of unknown length
// (Transfer-Encoding: chunked; Go's http.Request.ContentLength). Either
// counts as no CONTENT_LENGTH: a 411, or with chunked-request the body is
// read to the end of FCGI_STDIN, and the environ has no CONTENT_LENGTH.
func unknownLength(v string) bool { return v == "" || v == "-1" }

func (g *Gateway) accessLog(r *bridge.Request, rl *requestLog, status int) {
	st := g.state.Load()
	if !st.cfg.Server.AccessLog && rl.err == nil {
		return
	}
	ps := params(r.Params)
	method, _ := ps.Get("REQUEST_METHOD")
	uri, _ := ps.Get("REQUEST_URI")
	ev := g.log.Info()
	if rl.err != nil && status >= 500 {
		ev = g.log.Error().Err(rl.err)
	} else if rl.err != nil {
		ev = g.log.Warn().Err(rl.err)
	}
	ev = ev.Str("request_id", rl.id).Str("method", method).Str("uri", uri).Int("status", status).
		Int64("bytes", rl.bytes).Dur("duration_ms", time.Since(rl.start))
	if rt := rl.route; rt != nil {
		ev = ev.Str("vhost", rt.VHost).Str("process_group", rt.ProcessGroup).
			Str("application_group", rt.ApplicationGroup).Int("pid", rl.pid)
	}
	ev.Msg("request")
}
