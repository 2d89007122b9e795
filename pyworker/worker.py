"""wsgifcgi worker: runs WSGI applications for the Go bridge, as a mod_wsgi
daemon process does. Started by pyworker.Start with fd 3 (frames from Go),
fd 4 (frames to Go), fd 5 (this source, already read) and stdin on /dev/null.

Frame: 12-byte header (type u8, flags u8, pad u16, stream u32, length u32,
big endian) then the payload. Each side writes a frame in one system call
under a lock, so frames of concurrent requests never interleave.
"""

import collections
import hashlib
import io
import json
import os
import queue
import re
import select
import signal
import struct
import sys
import threading
import time
import traceback

HDR = struct.Struct('!BBxxII')
U32 = struct.Struct('!I')
U64 = struct.Struct('!Q')

# Go -> worker
T_CONFIG = 1     # JSON, first frame
T_REQUEST = 2    # u64 script mtime (ns; 0: unknown), environ blob; F_NOBODY: no body
T_BODY = 3       # request body bytes; F_EOF: the body ends here; F_ERR: it failed
T_CREDIT = 4     # u32: response bytes the client took
T_ABORT = 5      # the client is gone
T_SHUTDOWN = 6   # finish in-flight requests and exit
# worker -> Go
T_READY = 16     # "pid\0python version"
T_HEADERS = 17   # "status\0name\0value\0..." latin-1
T_DATA = 18      # response body bytes
T_WANT = 19      # u32: request body bytes the worker can take now
T_LOG = 20       # flags: level; payload: UTF-8 text
T_END = 21       # flags: outcome
T_PING = 22      # heartbeat: the interpreter can still run Python code
T_RESPONSE = 23  # flags: outcome; u32 header length, HEADERS payload, body

F_NOBODY = 1
F_EOF = 1
F_ERR = 2

L_INFO, L_WARN, L_ERROR = 1, 2, 3

OUT_OK = 0           # complete response
OUT_NOT_FOUND = 1    # script missing: nothing sent
OUT_APP_ERROR = 2    # failed before the headers were sent
OUT_TRUNCATED = 3    # failed after the headers were sent
OUT_ABORTED = 4      # the client went away
OUT_CLOSED = 5       # the worker is shutting down, request not run
OUT_RELOAD = 6       # script changed with reload_mechanism 'process'

BODY_WINDOW = 256 * 1024   # request body buffered ahead of the application
SEND_WINDOW = 1024 * 1024  # response bytes in flight toward a client
MAX_DATA = 256 * 1024      # largest DATA frame
# Largest body sent as a whole response (RESPONSE frame), which the bridge
# passes on as it reads it; larger ones go as DATA frames into its buffers.
WHOLE_MAX = 64 * 1024

HOP_BY_HOP = frozenset((
    'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
    'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade'))
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-zA-Z]+\Z")
BAD_VALUE = re.compile('[\r\n\0]')


class Aborted(OSError):
    """The client went away while the application was talking to it."""


class Channel:
    """Frames to Go on fd 4. Frames of concurrent requests never interleave:
    a sender appends its frames to one queue, and whoever finds no write
    under way writes everything queued, so several answers ready at once
    cost one system call. A deferred send only queues: the reader flushes
    before it waits for more requests (inline mode)."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()
        self.out = []
        self.writing = False

    def send(self, parts, defer=False):
        with self.lock:
            self.out += parts
            if defer or self.writing:
                return
            self.writing = True
        self._drain()

    def flush(self):
        with self.lock:
            if self.writing or not self.out:
                return
            self.writing = True
        self._drain()

    def _drain(self):
        lock = self.lock
        try:
            while True:
                with lock:
                    parts = self.out
                    if not parts:
                        self.writing = False
                        return
                    self.out = []
                self._write(parts)
        except BaseException:
            with lock:
                self.writing = False
            raise

    def _write(self, parts):
        if len(parts) > 64:
            parts = [b''.join(parts)]
        total = 0
        for p in parts:
            total += len(p)
        n = os.writev(self.fd, parts)
        if n == total:
            return
        # A signal or a full pipe cut the write short: finish it byte-exact.
        rest = memoryview(b''.join(parts))[n:]
        while rest:
            rest = rest[os.write(self.fd, rest):]

    def frame(self, typ, sid, payload=b'', flags=0):
        self.send([HDR.pack(typ, flags, sid, len(payload)), payload])

    def log(self, sid, level, text):
        self.frame(T_LOG, sid, text.encode('utf-8', 'replace'), level)


class FrameReader:
    """Frames from Go on fd 3, read into one reused buffer (a fresh 256 KiB
    bytes object per read costs an mmap, an mremap and a munmap) and parsed
    out of it, so that whether a whole frame is already here is known
    (inline mode polls with it)."""

    SIZE = 256 * 1024

    def __init__(self, fd, before_wait=None):
        self.file = io.FileIO(fd, 'rb', closefd=False)
        self.buf = bytearray(self.SIZE)
        self.view = memoryview(self.buf)
        self.start = 0     # first byte not parsed yet
        self.end = 0       # end of the bytes read
        # Called when no whole frame is buffered, before reading more: the
        # answers deferred meanwhile go out before the reader may wait.
        self.before_wait = before_wait
        self.poller = select.poll()
        self.poller.register(fd, select.POLLIN)

    def _frame(self):
        """The next buffered frame, or None if it is not all here yet."""
        pos = self.start
        if self.end - pos < 12:
            return None
        typ, flags, sid, n = HDR.unpack_from(self.buf, pos)
        stop = pos + 12 + n
        if stop > self.end:
            return None
        self.start = stop
        return typ, flags, sid, self.view[pos + 12:stop].tobytes()

    def _fill(self, want):
        """Reads at least one byte more, with room for want bytes."""
        have = self.end - self.start
        if have + want > len(self.buf) - self.start:
            # Move the partial frame to the front, in a bigger buffer if
            # the frame needs it.
            size = max(self.SIZE, have + want)
            buf = bytearray(size) if size > len(self.buf) else self.buf
            rest = self.view[self.start:self.end].tobytes()
            if buf is not self.buf:
                self.view.release()
                self.buf, self.view = buf, memoryview(buf)
            self.buf[:have] = rest
            self.start, self.end = 0, have
        elif have == 0:
            self.start = self.end = 0
        n = self.file.readinto(self.view[self.end:])
        if not n:
            return False
        self.end += n
        return True

    def read(self):
        """The next frame, waiting for it; None at the end of the pipe."""
        while True:
            f = self._frame()
            if f is not None:
                return f
            have = self.end - self.start
            want = 12 - have
            if have >= 12:
                want = 12 + U32.unpack_from(self.buf, self.start + 8)[0] - have
            if self.before_wait is not None:
                self.before_wait()
            if not self._fill(want):
                return None

    def next_buffered(self):
        """The next frame if it is all in the buffer, else None; no reading."""
        return self._frame()

    def read_nowait(self):
        """The next frame if it can be had without waiting, else None."""
        f = self._frame()
        if f is None and self.poller.poll(0):
            if not self._fill(1):
                raise EOFError
            f = self._frame()
        return f


class Request:
    """State one request shares between the reader thread and its runner."""

    __slots__ = ('sid', 'blob', 'cond', 'chunks', 'off', 'eof', 'failed', 'unacked',
                 'window', 'aborted', 'chan', 'pump')

    def __init__(self, sid, blob, nobody, chan, cond, pump=None):
        self.sid = sid
        self.blob = blob
        self.chan = chan
        # Inline mode: the runner is the only reader of frames, so instead
        # of waiting for another thread it reads the next frame itself.
        self.pump = pump
        # The worker's one condition: few threads wait on it, and a
        # request costs no lock of its own.
        self.cond = cond
        # The body as it came, a frame's bytes each: a read as large as a
        # frame takes it whole, without a copy.
        self.chunks = collections.deque()
        self.off = 0              # bytes of chunks[0] already read
        self.eof = nobody
        self.failed = False
        self.unacked = 0          # body consumed but not yet granted again
        self.window = SEND_WINDOW
        self.aborted = False

    # reader thread side
    def feed(self, data, flags):
        with self.cond:
            if data:
                self.chunks.append(data)
            if flags & F_EOF:
                self.eof = True
            if flags & F_ERR:
                self.eof = self.failed = True
            self.cond.notify_all()

    def credit(self, n):
        with self.cond:
            self.window += n
            self.cond.notify_all()

    def abort(self):
        with self.cond:
            self.aborted = True
            self.cond.notify_all()

    # runner side
    def take(self, n):
        """Up to n body bytes, blocking until some arrive; b'' at the end."""
        grant = 0
        with self.cond:
            if self.aborted:
                raise Aborted('request data read error')
            while not self.chunks:
                if self.aborted or self.failed:
                    raise Aborted('request data read error')
                if self.eof:
                    return b''
                if self.unacked:
                    grant, self.unacked = self.unacked, 0
                    self.cond.release()
                    try:
                        self.chan.frame(T_WANT, self.sid, U32.pack(grant))
                    finally:
                        self.cond.acquire()
                    grant = 0
                    continue
                self.wait()
            chunk, off = self.chunks[0], self.off
            if n >= len(chunk) - off:
                data = chunk[off:] if off else chunk
                self.chunks.popleft()
                self.off = 0
            else:
                data = chunk[off:off + n]
                self.off = off + n
            self.unacked += len(data)
            if self.unacked >= BODY_WINDOW // 2 and not self.eof:
                grant, self.unacked = self.unacked, 0
        if grant:
            self.chan.frame(T_WANT, self.sid, U32.pack(grant))
        return data

    def reserve(self, n):
        """Claims up to n bytes of the send window, waiting for credit."""
        with self.cond:
            while True:
                if self.aborted:
                    raise Aborted('failed to write data')
                if self.window > 0:
                    k = min(n, self.window)
                    self.window -= k
                    return k
                self.wait()

    def wait(self):
        """With cond held: waits for the reader thread, or in inline mode
        reads one frame."""
        if self.pump is None:
            self.cond.wait()
            return
        self.cond.release()
        try:
            self.pump(True)
        finally:
            self.cond.acquire()


class Input:
    """wsgi.input: the request body, pulled from Go as it is read."""

    def __init__(self, req, length):
        self._req = req
        self._left = length       # None: until the end of the body
        self._pending = b''       # read ahead by readline

    def _chunk(self, n):
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        if self._left is not None:
            if self._left <= 0:
                return b''
            n = min(n, self._left)
        data = self._req.take(n)
        if self._left is not None:
            self._left -= len(data)
        return data

    def read(self, size=-1):
        if size is None or size < 0:
            parts = []
            while True:
                data = self._chunk(MAX_DATA)
                if not data:
                    return b''.join(parts)
                parts.append(data)
        parts = []
        while size > 0:
            data = self._chunk(size)
            if not data:
                break
            parts.append(data)
            size -= len(data)
        return b''.join(parts)

    def readline(self, size=-1):
        if size is None or size < 0:
            size = sys.maxsize
        parts = []
        while size > 0:
            data = self._chunk(min(size, MAX_DATA))
            if not data:
                break
            i = data.find(b'\n')
            if i >= 0:
                self._pending = data[i + 1:] + self._pending
                parts.append(data[:i + 1])
                break
            parts.append(data)
            size -= len(data)
        return b''.join(parts)

    def readlines(self, hint=-1):
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


_errors_lock = threading.Lock()


class Errors:
    """wsgi.errors: text lines sent as LOG frames of the request."""

    def __init__(self, chan, sid):
        self._chan = chan
        self._sid = sid
        self._buf = ''
        self._lock = _errors_lock

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError('wsgi.errors.write() argument must be str, not %s'
                            % type(s).__name__)
        with self._lock:
            self._buf += s
            if '\n' not in self._buf:
                return
            text, _, self._buf = self._buf.rpartition('\n')
        self._chan.log(self._sid, L_ERROR, text)

    def writelines(self, seq):
        for s in seq:
            self.write(s)

    def flush(self):
        with self._lock:
            text, self._buf = self._buf, ''
        if text:
            self._chan.log(self._sid, L_ERROR, text)


class FileWrapper:
    """wsgi.file_wrapper: streams a file-like object in blocks."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


# Header names and statuses already found valid: an application sends the
# same few on every request, so each is checked once (bounded).
_good_names = {}      # name -> it is Content-Length
_good_statuses = set()


def check_status(status):
    if status in _good_statuses:
        return
    if type(status) is not str:
        raise TypeError('expected unicode object, value of type %s found'
                        % type(status).__name__)
    if len(status) < 4 or not status[:3].isdigit() or status[3] != ' ' \
            or not status[:3].isascii():
        raise ValueError('status must be "NNN reason": %r' % status)
    if BAD_VALUE.search(status):
        raise ValueError('status contains a control character: %r' % status)
    if len(_good_statuses) < 256:
        _good_statuses.add(status)


def check_name(name):
    """Validates a header name; True if it is Content-Length."""
    if not TOKEN.match(name):
        raise ValueError('invalid response header name %r' % name)
    lname = name.lower()
    if lname in HOP_BY_HOP:
        raise ValueError('hop-by-hop header %r not allowed in a WSGI response' % name)
    is_length = lname == 'content-length'
    if len(_good_names) < 1024:
        _good_names[name] = is_length
    return is_length


def encode_headers(status, headers):
    """Validates start_response arguments and returns the HEADERS payload and
    the declared Content-Length (None if absent)."""
    check_status(status)
    if type(headers) is not list:
        raise TypeError('response headers must be a list')
    fields = [status]
    length = None
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError('list of tuple values expected, value of type %s found'
                            % type(item).__name__)
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise TypeError('expected unicode object, value of type %s found'
                            % type(name if type(name) is not str else value).__name__)
        is_length = _good_names.get(name)
        if is_length is None:
            is_length = check_name(name)
        if BAD_VALUE.search(value):
            raise ValueError('embedded newline in response header with name %r' % name)
        if is_length:
            try:
                length = int(value.strip())
            except ValueError:
                raise ValueError('invalid Content-Length %r' % value) from None
            if length < 0:
                raise ValueError('invalid Content-Length %r' % value)
        fields.append(name)
        fields.append(value)
    return '\0'.join(fields).encode('latin-1'), length


class Response:
    """start_response, write() and the sending of one response."""

    def __init__(self, req, chan, environ, defer):
        self.req = req
        self.chan = chan
        self.environ = environ
        self.defer = defer        # the end may wait for the reader's flush
        # The web server sends no body for HEAD: the application still runs
        # to the end (generators, close()), but its bytes stay here.
        self.head_only = environ.get('REQUEST_METHOD') == 'HEAD'
        self.status = None
        self.head = None          # encoded HEADERS payload, until sent
        self.sent = False         # HEADERS went out
        self.left = None          # Content-Length still to send
        self.dropped = 0
        self.held = None          # a whole response's body blocks, sent with its end

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError('start_response() called a second time without exc_info')
        self.head, self.left = encode_headers(status, headers)
        self.status = status
        return self.write

    def write(self, data):
        if not isinstance(data, bytes):
            raise TypeError('sequence of byte string values expected, value of type %s found'
                            % type(data).__name__)
        if self.status is None:
            raise RuntimeError('response has not been started')
        if self.req.pump is not None and self.held is None:
            # Inline mode: notice an ABORT (or credit) already sent.
            self.req.pump(False)
        if self.req.aborted:
            raise Aborted('failed to write data')
        if not data:
            return
        if self.left is not None:
            if len(data) > self.left:
                self.dropped += len(data) - self.left
                data = data[:self.left]
                if not data:
                    return
            self.left -= len(data)
        if self.head_only:
            return
        self._send(data)

    def _send(self, data):
        if self.held is not None:
            self.held.append(data)
            return
        sid, n, off = self.req.sid, len(data), 0
        view = memoryview(data)
        while off < n:
            k = self.req.reserve(n - off)
            parts = self._head_parts()
            end = off + k
            while off < end:
                m = min(end - off, MAX_DATA)
                parts.append(HDR.pack(T_DATA, 0, sid, m))
                parts.append(view[off:off + m])
                off += m
            self.chan.send(parts)

    def _head_parts(self):
        if self.sent:
            return []
        self.sent = True
        head, self.head = self.head, None
        return [HDR.pack(T_HEADERS, 0, self.req.sid, len(head)), head]

    def finish(self):
        """Sends the headers if no body block did. Returns the outcome."""
        if self.status is None:
            raise RuntimeError('response has not been started')
        if self.held is None:
            parts = self._head_parts()
            if parts:
                self.chan.send(parts)
        if self.dropped:
            self.chan.log(self.req.sid, L_WARN,
                          'mod_wsgi (pid=%d): %d bytes beyond Content-Length dropped '
                          'from the response of %r.'
                          % (os.getpid(), self.dropped, self.environ.get('SCRIPT_FILENAME')))
        if self.left and self.environ.get('REQUEST_METHOD') != 'HEAD' \
                and self.status[:3] not in ('204', '304') and self.status[0] != '1':
            self.chan.log(self.req.sid, L_WARN,
                          'mod_wsgi (pid=%d): response of %r ended %d bytes short of '
                          'its Content-Length.'
                          % (os.getpid(), self.environ.get('SCRIPT_FILENAME'), self.left))
            return OUT_TRUNCATED
        return OUT_OK

    def end(self, outcome):
        sid, held = self.req.sid, self.held
        if held is None:
            self.chan.send([HDR.pack(T_END, outcome, sid, 0)], self.defer)
            return
        # A whole response: headers, body and end in one frame.
        self.held, self.sent = None, True
        head, self.head = self.head, None
        body = held[0] if len(held) == 1 else b''.join(held)
        self.chan.send([HDR.pack(T_RESPONSE, outcome, sid, 4 + len(head) + len(body)),
                        U32.pack(len(head)), head, body], self.defer)


class NotFound(Exception):
    pass


class ReloadProcess(Exception):
    pass


class Loader:
    """Loads WSGI scripts as mod_wsgi does: module '_mod_wsgi_' + md5 of the
    path, exec'ed from the file, cached, reloaded when the file changes."""

    def __init__(self):
        self.lock = threading.RLock()
        # Fully executed modules only: sys.modules holds a module while its
        # code still runs, and another thread must not take it then.
        self.loaded = {}
        self.names = {}   # script path -> module name

    def load(self, path, reloading, mechanism, mtime=0):
        """mtime: the file's modification time in ns as the bridge found it
        when it routed the request (0: unknown, stat it here)."""
        if not mtime:
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                raise NotFound(path) from None
        name = self.names.get(path)
        if name is None:
            name = '_mod_wsgi_' + hashlib.md5(path.encode('utf-8', 'surrogateescape')).hexdigest()
            self.names[path] = name
        module = self.loaded.get(name)
        if module is not None and (not reloading or module.__mtime__ == mtime):
            return module
        with self.lock:
            module = self.loaded.get(name)
            if module is not None:
                if not reloading or module.__mtime__ == mtime:
                    return module
                if mechanism == 'process':
                    raise ReloadProcess(path)
                del self.loaded[name]
                sys.modules.pop(name, None)
            module = self._exec(name, path, mtime)
            self.loaded[name] = module
            return module

    def _exec(self, name, path, mtime):
        with open(path, 'rb') as f:
            source = f.read()
        module = type(sys)(name)
        module.__file__ = path
        module.__mtime__ = mtime
        sys.modules[name] = module
        try:
            exec(compile(source, path, 'exec', dont_inherit=True), module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module


class Counters:
    """The per-process and per-thread counts of mod_wsgi 4.9's environ:
    mod_wsgi.thread_id (a number per request thread, in the order they first
    ran a request; the main thread has 0), mod_wsgi.thread_requests (requests
    that thread ran before this one) and mod_wsgi.total_requests (requests
    the process completed before this one started), all ints;
    mod_wsgi.script_start, the time the application is called, in µs since
    the epoch as a string; mod_wsgi.daemon_connects ('1') in daemon groups."""

    def __init__(self):
        self.lock = threading.Lock()
        self.threads = 0
        self.total = 0
        self.local = threading.local()

    def begin(self, environ):
        local = self.local
        tid = getattr(local, 'id', None)
        if tid is None:
            with self.lock:
                self.threads += 1
                tid = local.id = self.threads
            local.requests = 0
        environ['mod_wsgi.thread_id'] = tid
        environ['mod_wsgi.thread_requests'] = local.requests
        environ['mod_wsgi.total_requests'] = self.total
        environ['mod_wsgi.script_start'] = str(int(time.time() * 1000000))
        if 'mod_wsgi.queue_start' in environ:
            # One connection per request: the pipe is always there.
            environ['mod_wsgi.daemon_connects'] = '1'
        local.requests += 1

    def end(self):
        with self.lock:
            self.total += 1


class Worker:
    """Reader thread, request threads and the lifecycle of the process."""

    def __init__(self, cfg, frames, chan):
        self.cfg = cfg
        self.frames = frames
        self.chan = chan
        self.loader = Loader()
        self.cond = threading.Condition(threading.Lock())  # of every Request
        self.counters = Counters()
        self.requests = {}
        self.queue = queue.SimpleQueue()
        # A plain lock taken per request (a Condition's own context
        # manager is Python code); the condition over it wakes the main
        # thread when stopping.
        self.state_lock = threading.Lock()
        self.state = threading.Condition(self.state_lock)
        self.inflight = 0
        self.stopping = False
        self.lost = False
        threads = max(1, int(cfg.get('threads', 1)))
        self.static = {
            'wsgi.version': (1, 0),
            'wsgi.multithread': threads > 1,
            'wsgi.multiprocess': bool(cfg.get('multiprocess')),
            'wsgi.run_once': bool(cfg.get('run_once')),
            'wsgi.input_terminated': True,
            'wsgi.file_wrapper': FileWrapper,
            # The mod_wsgi release whose behaviour this follows (the spec's
            # parity facts), a tuple as mod_wsgi gives it.
            'mod_wsgi.version': (4, 9, 4),
            # No WSGIIgnoreActivity / WSGIEnableSendfile here: mod_wsgi's '0'.
            'mod_wsgi.ignore_activity': '0',
            'mod_wsgi.enable_sendfile': '0',
        }
        if cfg.get('stack_size'):
            threading.stack_size(int(cfg['stack_size']))
        # One thread: the reader thread runs each request itself (inline),
        # which saves two thread switches per request; it reads frames
        # while the application waits for body or credit, and polls for an
        # ABORT when the application writes.
        self.inline = threads == 1
        self.pending = collections.deque()  # inline: requests read while one runs
        self.eof = False
        if not self.inline:
            for i in range(threads):
                threading.Thread(target=self.run_requests, name='wsgi-request-%d' % i,
                                 daemon=True).start()

    # reader thread
    def read_frames(self):
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
        reqs = self.requests
        if typ == T_BODY:
            req = reqs.get(sid)
            if req is not None:
                req.feed(payload, flags)
        elif typ == T_CREDIT:
            req = reqs.get(sid)
            if req is not None:
                req.credit(U32.unpack(payload)[0])
        elif typ == T_REQUEST:
            self.accept(sid, payload, flags)
        elif typ == T_ABORT:
            req = reqs.get(sid)
            if req is not None:
                req.abort()
        elif typ == T_SHUTDOWN:
            self.stop(False)

    def pump(self, wait):
        """Inline mode, called by the running request: handles the next
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

    def accept(self, sid, blob, flags):
        with self.state_lock:
            if self.stopping:
                self.chan.frame(T_END, sid, flags=OUT_CLOSED)
                return
            self.inflight += 1
        req = Request(sid, blob, bool(flags & F_NOBODY), self.chan, self.cond,
                      self.pump if self.inline else None)
        self.requests[sid] = req
        if self.inline:
            self.pending.append(req)
        else:
            self.queue.put(req)

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

    # request threads
    def run_requests(self):
        while True:
            self.run(self.queue.get())

    def run(self, req):
        try:
            self.handle(req)
        except Exception:
            # Only a broken pipe to Go gets here; the reader sees it too.
            traceback.print_exc()
        finally:
            self.requests.pop(req.sid, None)
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
            environ['mod_wsgi.daemon_start'] = str(int(time.time() * 1000000))
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
        resp = Response(req, chan, environ, self.inline)
        self.counters.begin(environ)
        outcome = self.run_app(app, environ, resp, script)
        self.counters.end()
        try:
            errors.flush()
        finally:
            resp.end(outcome)

    def run_app(self, app, environ, resp, script):
        result = None
        outcome = OUT_OK
        try:
            result = app(environ, resp.start_response)
            if type(result) in (list, tuple) and len(result) == 1 and not resp.sent and \
                    isinstance(result[0], bytes) and len(result[0]) <= WHOLE_MAX:
                # The whole response fits one write with END.
                resp.held = []
                resp.write(result[0])
            elif isinstance(result, FileWrapper):
                self.send_file(result, resp)
            else:
                if resp.left is not None and resp.left <= WHOLE_MAX and not resp.sent:
                    # A declared length that fits a whole response (Django's and
                    # Flask's responses): its blocks go out with the end.
                    resp.held = []
                for block in result:
                    resp.write(block)
            outcome = resp.finish()
        except BaseException:
            outcome = self.failed(resp, script)
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                try:
                    close()
                except BaseException:
                    outcome = self.failed(resp, script)
        return outcome

    @staticmethod
    def send_file(wrapper, resp):
        """Streams a file_wrapper, never reading past the Content-Length."""
        read, size = wrapper.filelike.read, wrapper.blksize
        while True:
            if resp.left is not None:
                if resp.left <= 0:
                    return
                size = min(size, resp.left)
            data = read(size)
            if not data:
                return
            resp.write(data)

    def failed(self, resp, script):
        """Logs the exception being handled and gives the outcome."""
        if resp.req.aborted:
            return OUT_ABORTED
        self.chan.log(resp.req.sid, L_ERROR,
                      "mod_wsgi (pid=%d): Exception occurred processing WSGI script '%s'.\n%s"
                      % (os.getpid(), script, traceback.format_exc().rstrip()))
        if resp.held is not None:
            resp.held = None
            resp.sent = False
        return OUT_TRUNCATED if resp.sent else OUT_APP_ERROR


class RestrictedStream:
    """sys.stdin / sys.stdout replacement that refuses any use, attribute
    access included (.buffer, .encoding, .fileno()), as mod_wsgi's
    Restricted object does. The first refusal of each stream also logs the
    configuration key that lifts it."""

    __slots__ = ('_name', '_key')
    _logged = set()

    def __init__(self, name):
        object.__setattr__(self, '_name', name)
        object.__setattr__(self, '_key', 'restrict-' + name)

    def __getattribute__(self, attr):
        name = object.__getattribute__(self, '_name')
        if name not in RestrictedStream._logged:
            RestrictedStream._logged.add(name)
            sys.stderr.write('mod_wsgi (pid=%d): sys.%s access restricted by mod_wsgi; set '
                             '%s = false in [server] to allow it (the default since '
                             'mod_wsgi 3.0).\n'
                             % (os.getpid(), name, object.__getattribute__(self, '_key')))
        raise OSError('sys.%s access restricted by mod_wsgi' % name)

    def __setattr__(self, attr, value):
        self.__getattribute__(attr)

    def __repr__(self):
        return '<mod_wsgi.Restricted sys.%s>' % object.__getattribute__(self, '_name')


def restrict_signal(original):
    def intercept(signum, handler):
        sys.stderr.write('mod_wsgi (pid=%d): Callback registration for signal %d ignored.\n'
                         % (os.getpid(), int(signum)))
        traceback.print_stack(sys._getframe(1), file=sys.stderr)
        return handler
    intercept.__doc__ = original.__doc__
    return intercept


def set_title(title):
    """Rewrites argv in place so /proc/PID/cmdline and ps show title; the
    executable path used for exec (and the interpreter's prefix) stays real."""
    try:
        import ctypes
        with open('/proc/self/stat', 'rb') as f:
            fields = f.read().rsplit(b')', 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
        raw = title.encode('utf-8')[:end - start - 1]
        ctypes.memmove(start, raw + b'\0' * (end - start - len(raw)), end - start)
        libc = ctypes.CDLL(None)
        libc.prctl(15, ctypes.c_char_p(raw[:15]), 0, 0, 0)  # PR_SET_NAME
    except Exception as e:
        sys.stderr.write('wsgifcgi: cannot set the process title: %s\n' % e)


def auth_app(function, args):
    """Runs one function of an auth script (check_password, get_realm_hash,
    groups_for_user, allow_access) as a WSGI app answering its result in
    JSON. An exception, or a result JSON cannot carry, is an error: Go
    never takes it for an allow."""
    if function is None:
        return None

    def app(environ, start_response):
        body = json.dumps(function(environ, *args)).encode()
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [body]
    return app


def apply_limits(cfg):
    """umask, resource limits and priority of WSGIDaemonProcess, applied
    before any application code runs."""
    if cfg.get('umask') is not None:
        os.umask(int(cfg['umask']))
    import resource
    for key, which in (('memory_limit', 'RLIMIT_DATA'), ('virtual_memory_limit', 'RLIMIT_AS'),
                       ('cpu_time_limit', 'RLIMIT_CPU')):
        value = cfg.get(key)
        if value:
            limit = getattr(resource, which)
            hard = resource.getrlimit(limit)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(limit, (value, hard))
    if cfg.get('cpu_priority'):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, int(cfg['cpu_priority']))
        except OSError as e:
            sys.stderr.write('mod_wsgi (pid=%d): Unable to set CPU priority %d: %s\n'
                             % (os.getpid(), int(cfg['cpu_priority']), e))


def heartbeat(chan, interval):
    """Tells Go the interpreter still runs Python code. A thread that needs
    the GIL: when C code holds it (a deadlock), the beats stop and Go
    replaces the process after deadlock-timeout."""
    import time
    while True:
        time.sleep(interval)
        try:
            chan.frame(T_PING, 0)
        except OSError:
            return


def setup_process(cfg):
    """Interpreter setup done before any application code runs."""
    apply_limits(cfg)
    os.set_inheritable(3, False)
    os.set_inheritable(4, False)
    os.set_blocking(3, True)
    os.set_blocking(4, True)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass
    if cfg.get('title'):
        set_title(cfg['title'])
    sys.argv = ['mod_wsgi']
    if sys.path and sys.path[0] in ('', os.getcwd()):
        del sys.path[0]
    import site
    for d in cfg.get('python_path') or ():
        site.addsitedir(d)
    import types
    mod = types.ModuleType('mod_wsgi')
    mod.process_group = cfg.get('process_group', '')
    mod.application_group = cfg.get('application_group', '')
    mod.version = (4, 9, 4)
    # As mod_wsgi 4.9 sets them in a daemon process: the group's processes
    # and threads (ints).
    mod.maximum_processes = int(cfg.get('processes') or 1)
    mod.threads_per_process = int(cfg.get('threads') or 1)
    sys.modules['mod_wsgi'] = mod
    if cfg.get('restrict_stdin'):
        sys.stdin = RestrictedStream('stdin')
    if cfg.get('restrict_stdout'):
        sys.stdout = RestrictedStream('stdout')


def main():
    chan = Channel(4)
    frames = FrameReader(3, chan.flush)
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


if __name__ == '__main__':
    main()
