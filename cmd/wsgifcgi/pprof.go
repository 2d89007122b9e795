package main

import (
	"net/http"
	"net/http/pprof"
	"os"

	"github.com/rs/zerolog"
)

// startPprof serves Go's profiles on $WSGIFCGI_PPROF (e.g. 127.0.0.1:6060)
// when it is set: a debugging aid for profiling the bridge under load.
func startPprof(log zerolog.Logger) {
	addr := os.Getenv("WSGIFCGI_PPROF")
	if addr == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		log.Info().Str("addr", addr).Msg("pprof enabled")
		if err := http.ListenAndServe(addr, mux); err != nil {
			log.Error().Err(err).Msg("pprof")
		}
	}()
}
