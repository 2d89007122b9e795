package pyworker

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/wsgifcgi/wsgifcgi/internal/rawio"
)

// workerFS holds the worker's Python package, which TestFrameConstantsAgree
// reads from here.
//
//go:embed _wsgifcgi/*.py
var workerFS embed.FS

// workerSource is what a worker reads on fd 5: "name\x00filename\x00source"
// for each module, NUL-separated, _wsgifcgi.boot first (see boot.py).
var workerSource = packSources(workerFS)

// packSources encodes the modules of _wsgifcgi for the bootstrap. It panics
// on a source with a NUL, which Python rejects anyway.
func packSources(fsys embed.FS) []byte {
	entries, err := fsys.ReadDir(workerPackage)
	if err != nil {
		panic(err)
	}
	files := []string{"boot.py"}
	for _, e := range entries {
		if e.Name() != "boot.py" {
			files = append(files, e.Name())
		}
	}
	var fields [][]byte
	for _, base := range files {
		file := workerPackage + "/" + base
		src, err := fsys.ReadFile(file)
		if err != nil {
			panic(err)
		}
		if bytes.IndexByte(src, 0) >= 0 {
			panic("pyworker: NUL in " + file)
		}
		name := workerPackage
		if stem := strings.TrimSuffix(base, ".py"); stem != "__init__" {
			name += "." + stem
		}
		fields = append(fields, []byte(name), []byte(SourceDir+file), src)
	}
	return bytes.Join(fields, []byte{0})
}

// ErrReloadRequired is returned, before anything was sent, when the script
// changed and its reload mechanism is "process": the worker then stops
// gracefully and the caller should run the request on a fresh process.
var ErrReloadRequired = fmt.Errorf("%w: script changed, process reload required", ErrClosed)

// Worker is one running Python worker process.
type Worker struct {
	cfg     Config
	log     zerolog.Logger
	cmd     *exec.Cmd
	pid     int
	version string

	wmu     sync.Mutex // guards the queue of frames toward the worker
	queued  []byte     // frames waiting for the writer
	spare   []byte     // the writer's last buffer, for reuse
	writing bool       // a sender is writing: others only queue
	toPy    *os.File
	out     rawio.Writer // toPy by direct system calls, for the sender writing

	lendSock *os.File // the bridge's end of the worker's fd 6; nil: Config.Lend is off

	// What readLoop reads from and reads into.
	fromPy  *os.File
	bufs    sync.Pool // *[]byte of maxData for DATA payloads
	headBuf []byte    // the header block of a whole response, lent to its Sink

	mu      sync.Mutex
	streams map[uint32]*stream
	loans   map[uint32]chan repayment // by stream id, until RETURN (see lend)
	nextID  uint32
	closing bool // no new requests
	retired bool // it stopped itself to reload a script

	lost       chan struct{} // closed when the worker can serve no more
	lostOnce   sync.Once
	ready      chan struct{}
	done       chan struct{}
	exitErr    error
	stderr     tailLines
	stderrDone chan struct{}

	activity atomic.Int64 // unix ns of the last request sent or frame received
	beat     atomic.Int64 // unix ns of the last heartbeat (or the start)
}

// Start spawns a worker and waits for its READY frame.
func Start(cfg Config) (*Worker, error) { return StartContext(context.Background(), cfg) }

// StartContext is Start that gives up when ctx is done first: the worker
// is killed (a pool that closes does not wait for a start that hangs).
func StartContext(ctx context.Context, cfg Config) (*Worker, error) {
	cfg = cfg.withDefaults()
	cfgFrame, err := cfg.frame()
	if err != nil {
		return nil, fmt.Errorf("pyworker: encode config: %w", err)
	}
	var parent, child []*os.File
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			f.Close()
		}
	}
	pipe := func() (r, w *os.File, err error) {
		r, w, err = os.Pipe()
		if err != nil {
			return nil, nil, fmt.Errorf("pyworker: pipe: %w", err)
		}
		return r, w, nil
	}
	var fds [5][2]*os.File // toPy, fromPy, source, stdout, stderr
	for i := range fds {
		r, w, err := pipe()
		if err != nil {
			closeAll(parent)
			closeAll(child)
			return nil, err
		}
		fds[i] = [2]*os.File{r, w}
		if i == 0 || i == 2 { // the bridge writes these
			parent, child = append(parent, w), append(child, r)
		} else {
			parent, child = append(parent, r), append(child, w)
		}
	}
	toPyR, toPyW := fds[0][0], fds[0][1]
	fromPyR, fromPyW := fds[1][0], fds[1][1]
	srcR, srcW := fds[2][0], fds[2][1]
	for _, p := range []struct {
		f    *os.File
		size int
		name string
	}{{toPyW, cfg.ReceiveBufferSize, "receive-buffer-size"}, {fromPyW, cfg.SendBufferSize, "send-buffer-size"}} {
		if p.size > 0 {
			if err := setPipeSize(p.f, p.size); err != nil {
				cfg.Log.Warn().Err(err).Msg(p.name + " not applied")
			}
		} else if err := setPipeSize(p.f, pipeSize); err != nil {
			// Not configured: the default size is only a preference (an
			// unprivileged bridge may be over its pipe-user-pages limit).
			cfg.Log.Debug().Err(err).Msg("default pipe size not applied")
		}
	}

	cmd := exec.Command(cfg.Python, cfg.args()...)
	cmd.Dir, cmd.Env, cmd.SysProcAttr = cfg.Dir, cfg.Env, cfg.SysProcAttr
	cmd.Stdout, cmd.Stderr = fds[3][1], fds[4][1]
	cmd.ExtraFiles = []*os.File{toPyR, fromPyW, srcR}
	var lendSock *os.File
	if cfg.Lend {
		var lendChild *os.File
		if lendSock, lendChild, err = newLendSocket(); err != nil {
			closeAll(parent)
			closeAll(child)
			return nil, err
		}
		parent, child = append(parent, lendSock), append(child, lendChild)
		cmd.ExtraFiles = append(cmd.ExtraFiles, lendChild)
	}
	err = cmd.Start()
	closeAll(child)
	if err != nil {
		closeAll(parent)
		return nil, fmt.Errorf("pyworker: start %s: %w", cfg.Python, err)
	}

	w := &Worker{
		cfg: cfg, cmd: cmd, pid: cmd.Process.Pid,
		toPy: toPyW, out: rawio.NewWriter(toPyW), fromPy: fromPyR,
		streams: make(map[uint32]*stream), loans: make(map[uint32]chan repayment), lendSock: lendSock,
		lost: make(chan struct{}), ready: make(chan struct{}), done: make(chan struct{}),
		stderrDone: make(chan struct{}),
	}
	w.log = cfg.Log.With().Int("pid", w.pid).Logger()
	w.bufs.New = func() any { b := make([]byte, maxData); return &b }

	go func() {
		_, _ = srcW.Write(workerSource)
		srcW.Close()
	}()
	go logLines(fds[3][0], w.log, zerolog.InfoLevel, "stdout", nil)
	go func() {
		logLines(fds[4][0], w.log, zerolog.ErrorLevel, "stderr", &w.stderr)
		close(w.stderrDone)
	}()
	go w.wait()
	go w.readLoop(bufio.NewReaderSize(rawio.NewReader(fromPyR), readBuffer))
	_ = w.send(cfgFrame) // a worker that died shows below

	t := time.NewTimer(cfg.StartTimeout)
	defer t.Stop()
	select {
	case <-w.ready:
		now := time.Now().UnixNano()
		w.activity.Store(now)
		w.beat.Store(now)
		w.log.Debug().Str("python", w.version).Msg("worker ready")
		return w, nil
	case <-w.done:
		if w.exitErr != nil {
			return nil, fmt.Errorf("pyworker: worker exited before it was ready: %w", w.exitErr)
		}
		return nil, fmt.Errorf("pyworker: worker pid %d exited before it was ready%s", w.pid, tailNote(w.stderr.String()))
	case <-t.C:
		w.Kill()
		<-w.done
		return nil, fmt.Errorf("pyworker: worker not ready within %v, killed%s", cfg.StartTimeout, tailNote(w.stderr.String()))
	case <-ctx.Done():
		w.Kill()
		<-w.done
		return nil, fmt.Errorf("pyworker: start of pid %d given up: %w", w.pid, context.Cause(ctx))
	}
}

// wait reaps the process and fails whatever it was still serving.
func (w *Worker) wait() {
	err := w.cmd.Wait()
	w.lose()
	// Let the stderr reader drain, unless a child of the worker holds it.
	select {
	case <-w.stderrDone:
	case <-time.After(time.Second):
	}
	if err != nil {
		w.exitErr = fmt.Errorf("pid %d: %w%s", w.pid, err, tailNote(w.stderr.String()))
	}
	w.toPy.Close()
	w.fromPy.Close()
	if w.lendSock != nil {
		w.lendSock.Close()
	}
	close(w.done)
}

func tailNote(tail string) string {
	if tail == "" {
		return ""
	}
	return "; last stderr lines:\n" + tail
}

// lose marks the worker unable to serve; every waiting Serve returns.
func (w *Worker) lose() {
	w.lostOnce.Do(func() {
		w.mu.Lock()
		w.closing = true
		w.mu.Unlock()
		close(w.lost)
	})
}

// send passes one complete frame to the worker. Whoever finds no write
// under way writes, and goes on writing what others queued meanwhile: the
// requests of many connections reach the worker in few system calls. An
// error is reported to the sender that wrote; a frame only queued is lost
// with the worker, which every request waiting on it sees.
func (w *Worker) send(frame []byte) error {
	w.wmu.Lock()
	if w.writing {
		w.queued = append(w.queued, frame...)
		w.wmu.Unlock()
		return nil
	}
	w.writing = true
	w.wmu.Unlock()
	out := frame
	for {
		if _, err := w.out.Write(out); err != nil {
			w.wmu.Lock()
			w.writing, w.queued = false, w.queued[:0]
			w.wmu.Unlock()
			return fmt.Errorf("pyworker: write to pid %d: %w", w.pid, err)
		}
		w.wmu.Lock()
		if &out[0] != &frame[0] {
			w.spare = out[:0]
		}
		if len(w.queued) == 0 {
			w.writing = false
			w.wmu.Unlock()
			return nil
		}
		out, w.queued = w.queued, w.spare
		w.spare = nil
		w.wmu.Unlock()
	}
}

// sendCtl sends a frame without payload or with a u32 payload.
func (w *Worker) sendCtl(typ uint8, id uint32, val uint32, withVal bool) error {
	var b [headerSize + 4]byte
	if !withVal {
		putHeader(b[:], typ, 0, id, 0)
		return w.send(b[:headerSize])
	}
	putHeader(b[:], typ, 0, id, 4)
	b[12], b[13], b[14], b[15] = byte(val>>24), byte(val>>16), byte(val>>8), byte(val)
	return w.send(b[:])
}

// Pid is the worker's process id.
func (w *Worker) Pid() int { return w.pid }

// PythonVersion is the interpreter version the worker reported.
func (w *Worker) PythonVersion() string { return w.version }

// InFlight counts requests the worker has not finished.
func (w *Worker) InFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.streams)
}

// Done is closed when the process has exited.
func (w *Worker) Done() <-chan struct{} { return w.done }

// ExitErr says why the process exited: nil after a clean exit (or while it
// runs), else the exit status with the last lines of its stderr.
func (w *Worker) ExitErr() error {
	select {
	case <-w.done:
		return w.exitErr
	default:
		return nil
	}
}

// Kill ends the process at once (SIGKILL).
func (w *Worker) Kill() {
	select {
	case <-w.done:
	default:
		_ = w.cmd.Process.Kill()
	}
}

// retire stops new requests and asks the worker to exit once idle.
// LastActivity is when the worker last got a request or sent a frame:
// what inactivity-timeout measures.
func (w *Worker) LastActivity() time.Time { return time.Unix(0, w.activity.Load()) }

// LastHeartbeat is when the worker last proved it can run Python code (see
// Config.Heartbeat); the start time until the first beat.
func (w *Worker) LastHeartbeat() time.Time { return time.Unix(0, w.beat.Load()) }

// Retired reports whether the worker stopped itself to reload a changed
// script (reload-mechanism process): its exit is then planned, not a crash.
func (w *Worker) Retired() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.retired
}

func (w *Worker) retire() {
	w.mu.Lock()
	was := w.closing
	w.closing, w.retired = true, true
	w.mu.Unlock()
	if !was {
		_ = w.sendCtl(tShutdown, 0, 0, false)
	}
}

// Shutdown stops the worker gracefully: no new requests, in-flight ones
// finish, atexit handlers run. After timeout the process is killed.
func (w *Worker) Shutdown(timeout time.Duration) error {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	// Sent even after retire: SHUTDOWN is idempotent in the worker. Sent
	// aside: into the full pipe of a worker that stopped reading, the write
	// waits until Kill ends it, which must not hold Shutdown past timeout.
	go func() { _ = w.sendCtl(tShutdown, 0, 0, false) }()
	select {
	case <-w.done:
		return w.ExitErr()
	case <-t.C:
		w.Kill()
		<-w.done
		return fmt.Errorf("pyworker: pid %d did not stop within %v: killed", w.pid, timeout)
	}
}
