package gateway

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/wsgifcgi/wsgifcgi/bridge"
)

// A body read to its CONTENT_LENGTH ends with io.EOF; one whose STDIN
// ends short fails the read, and says so for the log.
func TestBodyTruncation(t *testing.T) {
	b := newBody(strings.NewReader("0123456789tail"), 10)
	if got, err := io.ReadAll(b); err != nil || string(got) != "0123456789" || b.failure() != nil {
		t.Fatalf("whole body: %q %v %v", got, err, b.failure())
	}
	b = newBody(strings.NewReader("0123456789"), 5000)
	got, err := io.ReadAll(b)
	if string(got) != "0123456789" || !errors.Is(err, errBodyTruncated) || !errors.Is(b.failure(), errBodyTruncated) {
		t.Fatalf("short body: %q %v", got, err)
	}
	if !strings.Contains(err.Error(), "10 of 5000 bytes") {
		t.Errorf("error %q does not say how short", err)
	}
	b = newBody(strings.NewReader("all of it"), -1) // chunked: to the end of STDIN
	if got, err := io.ReadAll(b); err != nil || string(got) != "all of it" {
		t.Fatalf("chunked body: %q %v", got, err)
	}
}

func TestBodyStatus(t *testing.T) {
	for _, tt := range []struct {
		err    error
		failed bool
		want   int
	}{
		{fmt.Errorf("x: %w", bridge.ErrStdinTimeout), false, 408},
		{bridge.ErrStdinTimeout, true, 408},
		{errBodyTruncated, true, 400},
		{errBodyTruncated, false, 0}, // the application answered anyway
		{bridge.ErrAborted, true, 499},
		{errors.New("spool full"), true, 0},
	} {
		if got := bodyStatus(tt.err, tt.failed); got != tt.want {
			t.Errorf("bodyStatus(%v, %v) = %d, want %d", tt.err, tt.failed, got, tt.want)
		}
	}
}
