package main

import (
	"syscall"
	"testing"

	"github.com/wsgifcgi/wsgifcgi/bridge"
	"github.com/wsgifcgi/wsgifcgi/groups"
)

func TestConnectionLimit(t *testing.T) {
	for _, tt := range []struct {
		want    int
		soft    uint64
		got     int
		lowered bool
	}{
		{16384, 65536, 16384, false},
		{16384, 16384, 15360, true},
		{16384, 1024, 768, true},
		{100, 1024, 100, false},
		{10, 0, 10, false}, // nonsense limit: left alone
	} {
		got, lowered := connectionLimit(tt.want, tt.soft)
		if got != tt.got || lowered != tt.lowered {
			t.Errorf("connectionLimit(%d, %d) = %d, %v; want %d, %v", tt.want, tt.soft, got, lowered, tt.got, tt.lowered)
		}
	}
}

func TestRaiseFileLimit(t *testing.T) {
	soft, hard, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		t.Fatal(err)
	}
	if soft != l.Cur || hard != l.Max || soft+1 < hard {
		t.Errorf("got %d/%d, the limit is %d/%d", soft, hard, l.Cur, l.Max)
	}
}

// The config's default and the bridge's agree, so that FCGI_MAX_CONNS says
// the same with or without a config.
func TestDefaultMaxConnections(t *testing.T) {
	if groups.DefaultMaxConnections != bridge.DefaultMaxConns {
		t.Errorf("groups.DefaultMaxConnections %d, bridge.DefaultMaxConns %d", groups.DefaultMaxConnections, bridge.DefaultMaxConns)
	}
}
