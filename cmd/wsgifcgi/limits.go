package main

import (
	"syscall"

	"github.com/rs/zerolog"
)

// raiseFileLimit makes the soft RLIMIT_NOFILE as high as the hard limit
// allows, as nginx's worker_rlimit_nofile does: every FastCGI connection,
// idle or not, is a descriptor. Go's runtime already does this at start-up
// (to the hard limit less one, since Go 1.19), for this process only: the
// worker processes it starts get the original soft limit back, which is
// what Python code that uses select() expects. So this only reads what
// that gave, and raises the limit itself in the unlikely case that it did
// not (the workers then inherit the raised limit). Operators raise the
// hard limit: LimitNOFILE= in the systemd unit (dist/wsgifcgi.service has
// 65536), ulimit -Hn, limits.conf.
func raiseFileLimit() (soft, hard uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, err
	}
	if l.Cur+1 < l.Max {
		want := l
		want.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
			l = want
		}
	}
	return l.Cur, l.Max, nil
}

// connectionLimit is max-connections as far as an open-file limit of soft
// leaves room for it: the worker pipes, spool files, listeners and logs
// need descriptors too (a reserve of a quarter of the limit, at most 1024).
// The second result says that want was lowered.
func connectionLimit(want int, soft uint64) (int, bool) {
	reserve := min(soft/4, 1024)
	if soft <= reserve || uint64(want) <= soft-reserve {
		return want, false
	}
	return int(soft - reserve), true
}

// fileLimitLogged applies the open-file limit to max-connections and logs
// both: the limit at info, a lowered max-connections as a warning.
func fileLimitLogged(log zerolog.Logger, maxConns int) int {
	soft, hard, err := raiseFileLimit()
	if err != nil {
		log.Warn().Err(err).Msg("cannot read the open-file limit (RLIMIT_NOFILE)")
		return maxConns
	}
	n, lowered := connectionLimit(maxConns, soft)
	if lowered {
		log.Warn().Uint64("open_files", soft).Uint64("open_files_hard", hard).
			Int("max_connections", maxConns).Int("using", n).
			Msg("max-connections lowered to fit the open-file limit; raise the hard limit (LimitNOFILE= in the systemd unit, ulimit -Hn) to allow more")
	}
	log.Info().Uint64("open_files", soft).Uint64("open_files_hard", hard).Int("max_connections", n).Msg("open-file limit")
	return n
}
