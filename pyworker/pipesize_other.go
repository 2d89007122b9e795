//go:build !linux

package pyworker

import (
	"errors"
	"os"
)

// setPipeSize: only Linux sizes pipes (F_SETPIPE_SZ); elsewhere they keep
// the system's size, and an asked-for size is reported as not applied.
func setPipeSize(_ *os.File, n int) error {
	if n <= 0 {
		return nil
	}
	return errors.New("pipe sizes can be set on Linux only")
}
