// Package rawio reads, writes and stats with direct system calls on the
// bridge's hot path.
//
// The sockets and pipes it is given sit in the Go runtime's poller and are
// non-blocking: a read or write either moves bytes or fails with EAGAIN at
// once, and waiting is the poller's job. The standard library still reports
// every such call to the scheduler as one that may block, and the first one
// after the process idled wakes the runtime's monitor thread (sysmon), which
// then polls every 20 µs until the process idles again. A server that idles
// between most of its requests paid that on nearly every request: a tenth of
// the bridge's CPU. A direct call tells no one, and needs not to: it cannot
// block.
//
// Stat is direct too, for the same reason: routing stats the script of every
// request (mod_wsgi's reloading does the same). A stat served from the
// inode cache, even over NFS with its attribute cache, takes microseconds;
// one that waits on a server holds the bridge's scheduler thread meanwhile.
package rawio

import (
	"io"
	"io/fs"
	"net"
	"syscall"
)

// Info is what routing needs of a file.
type Info struct {
	Mode  fs.FileMode // the type bits only
	Mtime int64       // unix ns
}

// Writer is a writer that can also write a vector in one call.
type Writer interface {
	io.Writer
	// WriteVec writes every byte of bufs, consuming them as
	// net.Buffers.WriteTo does.
	WriteVec(bufs [][]byte) (int64, error)
}

// SyscallConn is x's descriptor, or nil when x has none.
func SyscallConn(x any) syscall.RawConn {
	sc, ok := x.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// Consume drops the first n bytes of bufs, written by a writev, and the
// empty buffers that follow them; the buffers it drops are set to nil.
func Consume(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 {
		b := bufs[0]
		if n < len(b) {
			bufs[0] = b[n:]
			return bufs
		}
		n -= len(b)
		bufs[0] = nil
		bufs = bufs[1:]
	}
	return bufs
}

// plainWriter is a Writer for what has no descriptor of its own.
type plainWriter struct {
	w   io.Writer
	vec net.Buffers
}

func (p *plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p *plainWriter) WriteVec(bufs [][]byte) (int64, error) {
	p.vec = bufs
	n, err := p.vec.WriteTo(p.w)
	p.vec = nil
	return n, err
}
