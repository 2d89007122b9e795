package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/gateway"
	"github.com/wsgifcgi/wsgifcgi/groups"
	"github.com/wsgifcgi/wsgifcgi/metrics"
	"github.com/wsgifcgi/wsgifcgi/pyworker"
)

// drainTimeout bounds how long SIGTERM waits for requests in flight: the
// longest shutdown-timeout of the process groups.
func drainTimeout(cfg *groups.Config) time.Duration {
	d := cfg.Embedded.ShutdownTimeout
	for _, g := range cfg.Daemons {
		d = max(d, g.ShutdownTimeout)
	}
	if d <= 0 {
		d = 5 * time.Second
	}
	return d
}

func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var paths, listens multi
	fs.Var(&paths, "c", "configuration file or directory (repeatable)")
	fs.Var(&listens, "listen", "FastCGI listener: unix:/path, tcp:HOST:PORT or fd:N (repeatable)")
	httpAddr := fs.String("http", "", "also serve plain HTTP on ADDR through the FastCGI path")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	paths = configPaths(paths)
	cfg, err := groups.Load(paths...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	logOut := newLogWriter(os.Stderr)
	defer logOut.Flush()
	log := newLogger(os.Stderr, logOut, cfg.Server.LogFormat, cfg.Server.LogLevel)
	startPprof(log)
	for _, w := range append(cfg.Warnings, gateway.AccessWarnings(cfg)...) {
		log.Warn().Msg(w)
	}
	// Taken before any worker starts, so that none inherits LISTEN_*.
	sd, err := bridge.SystemdListeners(bridge.ListenConfig{WebServerAddrs: cfg.Server.WebServerAddrs})
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgifcgi:", err)
		return 1
	}
	var opts []gateway.Option
	var met *metrics.Metrics
	if cfg.Server.Metrics != "" {
		met = metrics.New()
		opts = append(opts, gateway.WithMetrics(met))
	}
	gw, err := gateway.New(cfg, log, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgifcgi:", err)
		return 1
	}
	defer gw.Close()

	lns, cleanup, err := openListeners(cfg, listens, sd, *httpAddr != "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsgifcgi:", err)
		return 1
	}
	defer cleanup()

	var ms *http.Server
	if met != nil {
		ml, err := listenMetrics(cfg.Server.Metrics, cfg.Server.SocketMode)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wsgifcgi: metrics:", err)
			return 1
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", met.Handler())
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		log.Info().Str("metrics", cfg.Server.Metrics).Msg("serving metrics at /metrics")
		go func() {
			if err := ms.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Msg("metrics server stopped")
			}
		}()
		defer ms.Close()
	}

	srv := &bridge.Server{Handler: gw, Log: log, AcceptRole: func(role uint16) bool {
		return role == bridge.RoleResponder || role == bridge.RoleAuthorizer
	}}
	// Requests still running when the drain times out are cut at once
	// (their workers are stopped next), and logged as cut by shutdown.
	srv.CutCause = fmt.Errorf("%w: %w", bridge.ErrServerClosed, pyworker.ErrCut)
	// max-connections is read at start-up only: the Server's limits are
	// fixed once it serves, so SIGHUP does not change it.
	srv.MaxConns = fileLimitLogged(log, cfg.Server.MaxConnections)
	var wg sync.WaitGroup
	errc := make(chan error, len(lns)+1)
	for _, l := range lns {
		log.Info().Str("listen", l.Addr().Network()+":"+l.Addr().String()).Msg("serving FastCGI")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(l); err != nil && !errors.Is(err, bridge.ErrServerClosed) {
				errc <- fmt.Errorf("listener %s: %w", l.Addr(), err)
			}
		}()
	}
	var hs *http.Server
	if *httpAddr != "" {
		hs = &http.Server{Addr: *httpAddr, Handler: httpFront(lns[0].Addr()), ReadHeaderTimeout: 30 * time.Second}
		hl, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wsgifcgi: --http:", err)
			return 1
		}
		log.Info().Str("http", hl.Addr().String()).Msg("serving HTTP for local use")
		go func() {
			if err := hs.Serve(hl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("--http: %w", err)
			}
		}()
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	for {
		select {
		case err := <-errc:
			log.Error().Err(err).Msg("stopping")
			srv.Close()
			return 1
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if next := reload(gw, paths, log); next != nil {
					cfg = next
				}
			case syscall.SIGUSR1:
				log.Info().Msg("SIGUSR1: restarting worker processes")
				gw.Restart()
			default:
				log.Info().Str("signal", sig.String()).Int("in_flight", srv.Active()).Msg("draining")
				ctx, cancel := context.WithTimeout(context.Background(), drainTimeout(cfg))
				if hs != nil {
					_ = hs.Shutdown(ctx)
				}
				err := srv.Shutdown(ctx)
				cancel()
				wg.Wait()
				if err != nil {
					log.Warn().Err(err).Msg("drain timed out; requests were cut")
					waitCut(srv)
				}
				gw.Close()
				log.Info().Msg("stopped")
				return 0
			}
		}
	}
}

// reload re-reads the configuration and returns it; a broken one is logged
// and the old one keeps serving (nil).
func reload(gw *gateway.Gateway, paths []string, log zerolog.Logger) *groups.Config {
	cfg, err := groups.Load(paths...)
	if err == nil {
		err = gw.Reload(cfg)
	}
	if err != nil {
		log.Error().Err(err).Msg("SIGHUP: configuration rejected, keeping the running one")
		return nil
	}
	for _, w := range append(cfg.Warnings, gateway.AccessWarnings(cfg)...) {
		log.Warn().Msg(w)
	}
	log.Info().Msg("SIGHUP: configuration reloaded")
	return cfg
}

// openListeners opens the configured and command-line listeners and adds
// systemd's (socket activation); with none, an inherited fd 0 socket
// (mod_fcgid, spawn-fcgi), or for --http alone a private unix socket.
func openListeners(cfg *groups.Config, extra []string, systemd []net.Listener, forHTTP bool) ([]net.Listener, func(), error) {
	lc := bridge.ListenConfig{WebServerAddrs: cfg.Server.WebServerAddrs, SocketMode: cfg.Server.SocketMode}
	var lns []net.Listener
	cleanup := func() {
		for _, l := range lns {
			l.Close()
		}
	}
	specs := append(append([]string(nil), cfg.Server.Listen...), extra...)
	for _, s := range specs {
		l, err := bridge.Listen(s, lc)
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("listen %s: %w", s, err)
		}
		lns = append(lns, l)
	}
	// systemd socket activation: served in addition to the configured ones.
	lns = append(lns, systemd...)
	if len(lns) == 0 {
		if l, ok := bridge.InheritedListener(); ok {
			lns = append(lns, l)
		}
	}
	if len(lns) == 0 && forHTTP {
		dir, err := os.MkdirTemp("", "wsgifcgi-")
		if err != nil {
			return nil, nil, err
		}
		l, err := bridge.Listen("unix:"+filepath.Join(dir, "fcgi.sock"), bridge.ListenConfig{SocketMode: 0o600})
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		lns = append(lns, l)
		prev := cleanup
		cleanup = func() { prev(); os.RemoveAll(dir) }
	}
	if len(lns) == 0 {
		return nil, nil, errors.New("no listener: set [server] listen, pass --listen, start with a listening socket on fd 0, or by systemd socket activation")
	}
	return lns, cleanup, nil
}

// listenMetrics opens the metrics endpoint: tcp:HOST:PORT (any peer: a
// Prometheus server may scrape from elsewhere) or unix:/path (with the
// listeners' socket-mode).
func listenMetrics(spec string, mode os.FileMode) (net.Listener, error) {
	if addr, ok := strings.CutPrefix(spec, "tcp:"); ok {
		return net.Listen("tcp", addr)
	}
	return bridge.Listen(spec, bridge.ListenConfig{SocketMode: mode})
}

// newLogger writes to out. The console format colours its lines only when
// out is a terminal: in a file, a pipe or the journal the escape codes
// would be noise.
// newLogger logs to out: JSON through the buffered w, or, for the
// console format (meant for a person watching), unbuffered.
func newLogger(out *os.File, w *logWriter, format, level string) zerolog.Logger {
	var log zerolog.Logger
	if format == "console" {
		log = zerolog.New(zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339, NoColor: !isTerminal(out)})
	} else {
		log = zerolog.New(w)
	}
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	return log.Level(lvl).With().Timestamp().Logger()
}

func isTerminal(f *os.File) bool {
	fd := f.Fd()
	return isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)
}

// waitCut gives the handlers of requests cut by the drain's timeout a
// moment to log them before the process exits.
func waitCut(srv *bridge.Server) {
	for deadline := time.Now().Add(2 * time.Second); srv.Active() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
}
