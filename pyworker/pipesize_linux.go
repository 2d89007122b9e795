package pyworker

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// setPipeSize asks the kernel for a pipe buffer of n bytes (F_SETPIPE_SZ);
// n <= 0 keeps the default.
func setPipeSize(f *os.File, n int) error {
	if n <= 0 {
		return nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		_, serr = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, n)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("F_SETPIPE_SZ %d: %w", n, serr)
	}
	return nil
}
