"""The worker's threads and lifecycle: the reader of frames, the request
threads (or, with one thread, the reader running each request itself), the
handling of one request, and main()."""

import collections
import json
import os
import signal
import struct
import sys
import threading
import time
import traceback

from . import frames
from .environ import Counters, static_keys
from .frames import (F_NOBODY, L_ERROR, L_INFO, OUT_ABORTED, OUT_APP_ERROR, OUT_CLOSED,
                     OUT_NOT_FOUND, OUT_RELOAD, T_ABORT, T_BODY, T_CONFIG, T_CREDIT, T_END,
                     T_LEND, T_RETURN,
                     T_PING, T_READY, T_REQUEST, T_SHUTDOWN, Channel, FrameReader)
from .lend import Loan, Receiver
from .loader import Loader, NotFound, ReloadProcess, auth_app
from .process import restrict_signal, setup_process
from .request import Errors, Input, Request
from .response import Response

U32, U64 = frames.U32, frames.U64   # assigned, not imported: see frames.HDR
LEND_HEAD = struct.Struct('!HI')


class Worker:
    """The threads that serve requests, and the lifecycle of the process.

    The threads share the pipe from Go (frames) and the requests read from
    it but not started yet (pending). With one thread, that thread reads
    the pipe and runs each request itself (read_frames), reading frames
    while the application waits for its body or credit, and polling for an
    ABORT when it writes. With more (serve_shared), they take turns: the
    thread that ends a request runs the next one read meanwhile, and reads
    the pipe when there is none, so that a busy worker runs requests one
    after another in one thread, without a hand-off between threads for
    each. The others stand by while it runs: one that sees no request start
    or end for STANDBY (the running one blocks: I/O, a sleep, a slow call)
    starts the next request itself, reading the pipe for it if need be, up
    to as many requests at once as there are threads. A thread that needs
    frames for its own request (body, credit) reads them itself when no
    other thread is reading."""

    # Long enough that a request of a few ms runs on without a second
    # thread contending for the GIL; short next to a blocking call. Each
    # wait that saw requests move doubles the next, up to STANDBY_MAX: a
    # thread standing by takes the GIL when its wait ends, which costs a
    # busy worker context switches (Django: 2.9 per request with waits of
    # 2 ms, 1.4 with the doubling, and 3-10% more requests a second).
    STANDBY = 0.002
    STANDBY_MAX = 0.016

    def __init__(self, cfg, frames, chan):
        self.cfg = cfg
        self.frames = frames
        self.chan = chan
        self.loader = Loader()
        self.cond = threading.Condition(threading.Lock())  # of every Request
        self.counters = Counters()
        self.requests = {}
        # A plain lock taken per request (a Condition's own context
        # manager is Python code); the condition over it wakes the main
        # thread when stopping.
        self.state_lock = threading.Lock()
        self.state = threading.Condition(self.state_lock)
        self.inflight = 0
        self.stopping = False
        self.lost = False
        self.threads = max(1, int(cfg.get('threads', 1)))
        self.static = static_keys(cfg)
        if cfg.get('stack_size'):
            threading.stack_size(int(cfg['stack_size']))
        self.inline = self.threads == 1
        # How a request's frames reach it (see Request).
        self.feeds = ((self.poll_inline, self.await_inline) if self.inline
                      else (self.poll_shared, self.await_shared))
        self.pending = collections.deque()  # requests read, not started
        self.eof = False
        # Several threads (under cond): one at a time reads frames; active
        # threads run a request; moves counts requests started and ended,
        # how a thread standing by sees the running ones progress; standing
        # threads stand by; wanting holds the requests whose threads wait for
        # another's reading to bring their frames (each sleeps on its own,
        # woken by its frames, so a frame wakes one thread, not all).
        self.reading = False
        self.active = 0
        self.moves = 0
        self.standing = 0
        self.wanting = []
        self.patience = self.STANDBY
        self.receiver = Receiver(6) if cfg.get('lend') else None

    def read_frames(self):
        """Serves until the pipe from Go ends."""
        if not self.inline:
            for i in range(1, self.threads):
                threading.Thread(target=self.serve_shared, name='wsgi-request-%d' % i,
                                 daemon=True).start()
            self.serve_shared()
            return
        try:
            while True:
                # Every frame already read goes first: an ABORT behind a
                # REQUEST that waited in the pipe stops it before it runs.
                f = self.frames.next_buffered()
                if f is None and self.pending:
                    self.run(self.pending.popleft())
                    continue
                if f is None:
                    f = self.frames.read()
                if f is None:
                    break
                self.dispatch(*f)
        except OSError:
            pass
        self.eof = True
        self.stop(True)

    def dispatch(self, typ, flags, sid, payload):
        if typ == T_REQUEST:
            self.accept(sid, payload, flags)
            return
        reqs = self.requests
        if typ == T_BODY:
            req = reqs.get(sid)
            if req is not None:
                req.feed(payload, flags)
        elif typ == T_CREDIT:
            req = reqs.get(sid)
            if req is not None:
                req.credit(U32.unpack(payload)[0])
        elif typ == T_ABORT:
            req = reqs.get(sid)
            if req is not None:
                req.abort()
        elif typ == T_LEND:
            self.lend(sid, payload)
        elif typ == T_SHUTDOWN:
            self.stop(False)

    def lend(self, sid, payload):
        """A LEND: the request's loan, or it goes back at once."""
        fd = self.receiver.take(sid) if self.receiver is not None else None
        rid, idle = LEND_HEAD.unpack_from(payload)
        prefix = payload[LEND_HEAD.size:]
        req = self.requests.get(sid)
        loan = None
        if fd is not None and req is not None:
            try:
                loan = Loan(fd, rid, idle / 1000, prefix)
            except OSError:
                pass
        if loan is not None and req.lend(loan):
            return
        if loan is not None:
            loan.sock.close()
        elif fd is not None:
            os.close(fd)
        self.chan.frame(T_RETURN, sid, U64.pack(0) + prefix)

    def pump(self, wait):
        """One thread, called by the running request: handles the next
        frame (waiting for it if wait), or every frame already here."""
        if self.eof:
            return
        try:
            if wait:
                f = self.frames.read()
                if f is None:
                    raise EOFError
                self.dispatch(*f)
                return
            while True:
                f = self.frames.read_nowait()
                if f is None:
                    return
                self.dispatch(*f)
        except (OSError, EOFError):
            self.eof = True
            self.stop(True)

    def poll_inline(self):
        """One thread, called by a request that writes: handles the frames
        that can be had without waiting (an ABORT)."""
        self.pump(False)

    def await_inline(self, req):
        """One thread, cond held: reads the frame a request waits for."""
        self.cond.release()
        try:
            self.pump(True)
        finally:
            self.cond.acquire()

    # several threads
    def serve_shared(self):
        """One of several request threads (see the class doc)."""
        cond, pending = self.cond, self.pending
        with cond:
            while True:
                if pending and not self.active:
                    req = pending.popleft()
                elif not self.active and not self.reading:
                    if self.eof:
                        return
                    self.read_locked(True)
                    continue
                elif self.active:
                    # Standing by: a request that waits takes a thread of
                    # its own only when the running ones make no progress.
                    if self.stand_by() or not self.active:
                        continue
                    if pending:
                        req = pending.popleft()
                    elif not self.reading and not self.eof:
                        self.read_locked(True)
                        continue
                    else:
                        continue
                else:
                    if self.eof and not pending:
                        return
                    # Between requests, one thread stays standing by while
                    # they keep coming, so that starting the next one wakes
                    # no thread; after a quiet STANDBY it waits to be woken.
                    if not self.standing and self.stand_by():
                        continue
                    if not self.eof:   # the end may have come while it stood by
                        cond.wait()   # another thread reads: it wakes us with work
                    continue
                self.active += 1
                try:
                    while True:
                        self.moves += 1
                        if not self.standing:
                            cond.notify()   # someone to stand by
                        cond.release()
                        try:
                            self.run(req)
                        finally:
                            cond.acquire()
                            self.moves += 1
                        # Alone, it runs the next one read meanwhile at once.
                        if not pending or self.active != 1:
                            break
                        req = pending.popleft()
                finally:
                    self.active -= 1

    def stand_by(self):
        """Several threads, cond held: waits as a thread standing by (from
        STANDBY, twice as long after each wait that saw progress, up to
        STANDBY_MAX); True if a request started or ended meanwhile."""
        moves = self.moves
        self.standing += 1
        self.cond.wait(self.patience)
        self.standing -= 1
        if self.moves != moves:
            self.patience = min(2 * self.patience, self.STANDBY_MAX)
            return True
        self.patience = self.STANDBY
        return False

    def read_locked(self, block):
        """Several threads, cond held, no one reading: handles every frame
        already read and, when block and there is none, waits for more."""
        self.reading = True
        self.cond.release()
        eof = False
        try:
            frames = self.frames
            f = frames.next_buffered()
            if f is None and block:
                f = frames.read()
                eof = f is None
            elif f is None:
                f = frames.read_nowait()
            while f is not None:
                self.dispatch(*f)
                f = frames.next_buffered()
        except (OSError, EOFError):
            eof = True
        finally:
            if eof:
                self.eof = True
                self.stop(True)
            self.cond.acquire()
            self.reading = False
            if eof:
                for req in self.wanting:
                    req.wake()
            else:
                # One of the requests still waiting reads next (the others
                # were woken by their frames, or sleep on until it has read).
                for req in self.wanting:
                    if req.waiter is not None:
                        req.wake()
                        break
            if self.wanting or eof:
                self.cond.notify_all()   # idle threads: requests may be pending

    def poll_shared(self):
        """Several threads, called by a request that writes: handles the
        frames that can be had without waiting (an ABORT), unless another
        thread reads."""
        with self.cond:
            if not self.reading and not self.eof:
                self.read_locked(False)

    def await_shared(self, req):
        """Several threads, cond held: the frames req waits for come, read by
        this thread unless another one reads."""
        if self.reading or self.eof:
            self.wanting.append(req)
            try:
                req.sleep()
            finally:
                self.wanting.remove(req)
            return
        self.read_locked(True)

    def accept(self, sid, blob, flags):
        with self.state_lock:
            if self.stopping:
                self.chan.frame(T_END, sid, flags=OUT_CLOSED)
                return
            self.inflight += 1
        req = Request(sid, blob, flags & F_NOBODY, self.chan, self.cond, *self.feeds)
        self.requests[sid] = req
        # No lock: deque appends and pops are atomic, and every thread
        # looks at pending again under cond before it waits.
        self.pending.append(req)

    def stop(self, lost):
        with self.state:
            self.stopping = True
            if lost:
                self.lost = True
                for req in list(self.requests.values()):
                    req.abort()
            self.state.notify_all()

    def wait_stopped(self):
        """Main thread: returns once stopped and no request is in flight."""
        with self.state:
            while not self.stopping:
                self.state.wait()
            while self.inflight and not self.lost:
                self.state.wait()

    def run(self, req):
        try:
            self.handle(req)
        except Exception:
            # Only a broken pipe to Go gets here; the reader sees it too.
            traceback.print_exc()
        finally:
            self.requests.pop(req.sid, None)
            req.repay(True)
            with self.state_lock:
                self.inflight -= 1
                # Only the main thread waits, for the last one when stopping.
                if self.stopping and not self.inflight:
                    self.state.notify_all()

    def handle(self, req):
        if req.aborted:
            # Its client left while it waited in the pipe: never started.
            self.chan.frame(T_END, req.sid, flags=OUT_ABORTED)
            return
        # Decoded here rather than in a function of environ.py: the call
        # would cost about 1% of a small request's time in the worker.
        blob = req.blob
        mtime = U64.unpack_from(blob)[0]
        it = iter(blob[8:].decode('latin-1').split('\0'))
        environ = dict(zip(it, it))
        req.blob = None
        environ.update(self.static)
        environ.setdefault('wsgi.url_scheme', 'http')
        if 'mod_wsgi.queue_start' in environ:
            # A daemon process: when it took the request off its queue, in
            # µs since the epoch, a string as mod_wsgi's other times are.
            environ['mod_wsgi.daemon_start'] = str(time.time_ns() // 1000)
            # One connection per request: the pipe is always there.
            environ['mod_wsgi.daemon_connects'] = '1'
        length = environ.get('CONTENT_LENGTH')
        try:
            length = int(length) if length else None
        except ValueError:
            length = None
        environ['wsgi.input'] = Input(req, length)
        errors = Errors(self.chan, req.sid)
        environ['wsgi.errors'] = errors
        chan, sid = self.chan, req.sid
        script = environ.get('SCRIPT_FILENAME', '')
        try:
            module = self.loader.load(script, environ.get('mod_wsgi.script_reloading', '1') == '1',
                                      environ.get('mod_wsgi.reload_mechanism', 'module'), mtime)
        except NotFound:
            chan.log(sid, L_ERROR, 'Target WSGI script not found or unable to stat: %s' % script)
            chan.frame(T_END, sid, flags=OUT_NOT_FOUND)
            return
        except ReloadProcess:
            chan.log(sid, L_INFO, 'mod_wsgi (pid=%d): Force restart of process for %r.'
                     % (os.getpid(), script))
            chan.frame(T_END, sid, flags=OUT_RELOAD)
            return
        except BaseException:
            chan.log(sid, L_ERROR, "mod_wsgi (pid=%d): Target WSGI script '%s' cannot be loaded "
                     "as Python module.\nmod_wsgi (pid=%d): Exception occurred processing WSGI "
                     "script '%s'.\n%s" % (os.getpid(), script, os.getpid(), script,
                                           traceback.format_exc().rstrip()))
            chan.frame(T_END, sid, flags=OUT_APP_ERROR)
            return
        auth = environ.pop('mod_wsgi.auth_function', None)
        if auth is not None:
            name = auth
            app = auth_app(module.__dict__.get(auth), json.loads(environ.pop('mod_wsgi.auth_args', '[]')))
        else:
            name = environ.get('mod_wsgi.callable_object') or 'application'
            app = module.__dict__.get(name)
        if app is None:
            chan.log(sid, L_ERROR, "mod_wsgi (pid=%d): Target WSGI script '%s' does not contain "
                     "WSGI application '%s'." % (os.getpid(), script, name))
            chan.frame(T_END, sid, flags=OUT_APP_ERROR)
            return
        resp = Response(req, chan, environ)
        self.counters.begin(environ)
        outcome = resp.run(app, script)
        self.counters.end()
        try:
            errors.flush()
        finally:
            resp.end(outcome)


def heartbeat(chan, interval):
    """Tells Go the interpreter still runs Python code. A thread that needs
    the GIL: when C code holds it (a deadlock), the beats stop and Go
    replaces the process after deadlock-timeout."""
    while True:
        time.sleep(interval)
        try:
            chan.frame(T_PING, 0)
        except OSError:
            return


def main():
    chan = Channel(4)
    frames = FrameReader(3)
    f = frames.read()
    if f is None or f[0] != T_CONFIG:
        raise SystemExit('wsgifcgi worker: expected a config frame, got %r'
                         % (f and f[0]))
    cfg = json.loads(f[3].decode('utf-8'))
    setup_process(cfg)

    worker = Worker(cfg, frames, chan)

    def on_term(signum, frame):
        # Not worker.stop() here: the main thread may hold worker.state.
        threading.Thread(target=worker.stop, args=(False,), daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if cfg.get('restrict_signal'):
        signal.signal = restrict_signal(signal.signal)

    for path in cfg.get('import_scripts') or ():
        try:
            worker.loader.load(path, False, 'module')
        except NotFound:
            sys.stderr.write('mod_wsgi (pid=%d): Target WSGI script not found or unable to '
                             'stat: %s\n' % (os.getpid(), path))
        except BaseException:
            sys.stderr.write("mod_wsgi (pid=%d): Target WSGI script '%s' cannot be loaded as "
                             "Python module.\n" % (os.getpid(), path))
            traceback.print_exc()

    version = '%d.%d.%d' % sys.version_info[:3]
    chan.frame(T_READY, 0, ('%d\0%s' % (os.getpid(), version)).encode())
    threading.Thread(target=worker.read_frames, name='wsgi-reader', daemon=True).start()
    if cfg.get('heartbeat'):
        threading.Thread(target=heartbeat, args=(chan, float(cfg['heartbeat'])),
                         name='wsgi-heartbeat', daemon=True).start()
    worker.wait_stopped()
    # Python flushes sys.stdout at exit: not through a restricted stream.
    sys.stdout, sys.stdin = sys.__stdout__, sys.__stdin__
