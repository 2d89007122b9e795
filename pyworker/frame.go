package pyworker

// The pipe protocol. Go writes frames on the worker's fd 3, the worker on
// its fd 4; each frame goes out in one write under a lock on each side.
//
//	start:    Go sends CONFIG; the worker loads import scripts, sends READY.
//	request:  Go sends REQUEST (environ blob) and, while it has credit, BODY
//	          frames (the first bodyWindow bytes need no asking; WANT from
//	          the worker adds credit as the application reads wsgi.input).
//	response: the worker sends HEADERS with the first body block (or at the
//	          end), DATA frames within a send window that Go's CREDIT frames
//	          replenish once the Sink took the bytes, LOG frames, then END
//	          with an outcome. ABORT from Go makes the application's next
//	          write or read fail; END follows after the iterable's close().
//	loan:     Go passes the web server's connection on the worker's fd 6
//	          (a datagram: the stream id, the descriptor attached), then sends
//	          LEND; the worker reads the request's STDIN records from it and
//	          gives it back with RETURN before it answers (see lend.go).
//	stop:     SHUTDOWN (or SIGTERM): no new requests, in-flight ones finish,
//	          atexit runs, exit 0. EOF on fd 3: the worker exits at once.

import "encoding/binary"

// Frame header: type u8, flags u8, 2 bytes padding, stream id u32, payload
// length u32, big endian. _wsgifcgi/frames.py declares the same constants.
const headerSize = 12

// Frames from Go to the worker.
const (
	tConfig   = 1 // JSON configuration, the first frame
	tRequest  = 2 // u64 script mtime (ns; 0: unknown), environ blob; fNoBody: no body
	tBody     = 3 // request body bytes; fEOF ends it, fErr says reading it failed
	tCredit   = 4 // u32: response bytes the Sink took
	tAbort    = 5 // the client is gone
	tShutdown = 6 // finish in-flight requests, run atexit, exit 0
	tLend     = 7 // u16 FastCGI request id, u32 idle timeout (ms; 0: none), bytes read and not parsed
)

// Frames from the worker to Go.
const (
	tReady   = 16 // "pid\x00python version"
	tHeaders = 17 // "status\x00name\x00value\x00..."
	tData    = 18 // response body bytes
	tWant    = 19 // u32: request body bytes the worker can take
	tLog     = 20 // flags: level; payload: text
	tEnd     = 21 // flags: outcome
	tPing    = 22 // heartbeat: the interpreter still runs Python code
	// tResponse is a whole response in one frame, with its outcome in the
	// flags: u32 length of the HEADERS payload, that payload, the body.
	tResponse = 23
	// tReturn gives a loan back: u64 body bytes read through it, then the
	// bytes read from the connection and not consumed; fStalled: the body
	// sent nothing for its idle timeout.
	tReturn = 24
)

const (
	fNoBody = 1
	fEOF    = 1
	fErr    = 2

	fStalled = 1
)

// Outcomes carried by tEnd.
const (
	outOK        = 0
	outNotFound  = 1
	outAppError  = 2 // before the headers were sent
	outTruncated = 3 // after the headers were sent
	outAborted   = 4
	outClosed    = 5 // the worker is stopping and did not run the request
	outReload    = 6 // the script changed and reload-mechanism is "process"
)

// Log levels carried by tLog.
const (
	levelInfo  = 1
	levelWarn  = 2
	levelError = 3
)

// Windows of the flow control; _wsgifcgi/frames.py uses the same values.
const (
	bodyWindow = BodyWindow // request body Go may send before the worker asks
	maxData    = 256 << 10  // largest DATA frame the worker sends
	maxBody    = 64 << 10   // largest BODY frame sent to the worker
	// maxLeftover bounds the bytes a RETURN gives back: the loan's prefix,
	// or the worker's read buffer, with a record's head.
	maxLeftover = 256<<10 + 64<<10
	// pipeSize is the capacity asked for the pipes when the daemon's
	// receive/send-buffer-size is not set: a 1 MiB response crosses in one
	// write and without waiting for credit (64 KiB, Linux's default, cost
	// a write and a wake-up per 64 KiB). Capped by /proc/sys/fs/pipe-max-size.
	pipeSize = 1 << 20
	// readBuffer holds the answers a worker wrote at once: one read
	// takes them all.
	readBuffer = 256 << 10
)

// The largest payloads a worker sends (_wsgifcgi/frames.py keeps to them).
const (
	maxHead  = 256 << 10 // HEADERS: start_response refuses a larger block
	maxWhole = 64 << 10  // the body of a RESPONSE frame
	maxLog   = 64 << 10  // LOG: a longer text goes in several frames
)

// maxPayload bounds a worker's frame of type typ. A larger one comes from a
// broken or hostile worker (an application can write to the pipe itself),
// and the bridge, which serves every virtual host, does not hold it.
func maxPayload(typ uint8) uint32 {
	switch typ {
	case tData:
		return maxData
	case tHeaders:
		return maxHead
	case tResponse:
		return 4 + maxHead + maxWhole
	case tLog:
		return maxLog
	case tWant:
		return 4
	case tReady:
		return 1 << 10
	case tReturn:
		return 8 + maxLeftover
	default: // PING, END, and types this bridge does not know
		return 0
	}
}

func putHeader(b []byte, typ, flags uint8, id uint32, n int) {
	b[0], b[1], b[2], b[3] = typ, flags, 0, 0
	binary.BigEndian.PutUint32(b[4:], id)
	binary.BigEndian.PutUint32(b[8:], uint32(n))
}

type header struct {
	typ, flags uint8
	id         uint32
	n          uint32
}

func parseHeader(b []byte) header {
	return header{typ: b[0], flags: b[1], id: binary.BigEndian.Uint32(b[4:]), n: binary.BigEndian.Uint32(b[8:])}
}

// BodyWindow is the most request body a worker can have been sent before
// it accepted the request: what a caller must keep to retry the request on
// another worker after ErrClosed.
const BodyWindow = 256 << 10
