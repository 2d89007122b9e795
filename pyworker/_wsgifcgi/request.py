"""One request's flow: its body coming in (wsgi.input), the send window of
its response, its abort; and wsgi.errors."""

import collections
import sys
import threading

from . import frames
from .frames import (BODY_WINDOW, F_EOF, F_ERR, F_STALLED, L_ERROR, MAX_DATA, SEND_WINDOW,
                     T_RETURN, T_WANT)

U32 = frames.U32   # assigned, not imported: see frames.HDR


NO_CHUNKS = ()


class Aborted(OSError):
    """The client went away while the application was talking to it."""


class Request:
    """State one request shares between the reader thread and its runner."""

    # Until set on the instance (class attributes: a request without a
    # body never sets most of them).
    waiter = None
    # The body as it came, a frame's bytes each (a deque from the first
    # one): a read as large as a frame takes it whole, without a copy.
    chunks = NO_CHUNKS
    off = 0              # bytes of chunks[0] already read
    failed = False
    unacked = 0          # body consumed but not yet granted again
    window = SEND_WINDOW
    aborted = False
    # The web server's connection, lent for the rest of the body (see
    # lend.py); given back before the response begins or the request ends
    # (closed: no loan is taken any more).
    loan = None
    closed = False

    def __init__(self, sid, blob, nobody, chan, cond, poll=None, await_frames=None):
        self.sid = sid
        self.blob = blob
        self.chan = chan
        # How the worker's frames reach the request (see main.Worker): poll
        # handles those that came without waiting; await_frames(request),
        # called with cond held, waits for more, reading them itself when no
        # other thread reads. Without them, another thread feeds it.
        self.poll = poll
        self.await_frames = await_frames
        # The worker's one condition, whose lock guards every request; a
        # request's runner sleeps on a lock of its own (waiter) so that its
        # frames wake it alone.
        self.cond = cond
        self.eof = nobody

    # reader thread side
    def feed(self, data, flags):
        with self.cond:
            if data:
                if self.chunks is NO_CHUNKS:
                    self.chunks = collections.deque()
                self.chunks.append(data)
            if flags & F_EOF:
                self.eof = True
            if flags & F_ERR:
                self.eof = self.failed = True
            self.wake()

    def credit(self, n):
        with self.cond:
            self.window += n
            self.wake()

    def abort(self):
        with self.cond:
            self.aborted = True
            self.wake()

    def lend(self, loan):
        """Takes a loan; False if the request no longer reads its body."""
        with self.cond:
            if self.closed or self.loan is not None:
                return False
            self.loan = loan
            self.wake()
            return True

    def repay(self, close=False):
        """Runner side: gives the loan back, if there is one; close: the
        response begins or the request ends, and no loan is taken after."""
        if self.loan is None and self.eof:
            # None now, and none to come: a loan ends before the body does
            # (the bridge sends its end after the RETURN). Every request
            # without a body gets here, and takes no lock.
            return
        with self.cond:
            loan, self.loan = self.loan, None
            if close:
                self.closed = True
        if loan is not None:
            self.chan.frame(T_RETURN, self.sid, loan.payload(), F_STALLED if loan.stalled else 0)

    def cancelled(self):
        """Whether an ABORT came (looked for, with one thread)."""
        if self.poll is not None:
            self.poll()
        return self.aborted

    def wake(self):
        """With cond held: ends the runner's sleep, if it sleeps."""
        w = self.waiter
        if w is not None:
            self.waiter = None
            w.release()

    def sleep(self):
        """With cond held: sleeps, without it, until wake."""
        w = self.waiter = threading.Lock()
        w.acquire()
        self.cond.release()
        try:
            w.acquire()
        finally:
            self.cond.acquire()
            if self.waiter is w:
                self.waiter = None

    # runner side
    def take(self, n, owed=None):
        """Up to n body bytes, blocking until some arrive; b'' at the end.
        owed: body bytes still to come, if known."""
        loan = self.loan
        if loan is not None and not self.chunks and not self.aborted:
            # Only this thread reads or repays a loan, and no BODY frame
            # comes while one is out: no lock for it. b'' (the loan is
            # over) and the rest go the long way.
            data = loan.read(n, self.cancelled, owed)
            if data:
                return data
        grant = 0
        with self.cond:
            if self.aborted:
                raise Aborted('request data read error')
            while not self.chunks:
                if self.aborted or self.failed:
                    raise Aborted('request data read error')
                if self.eof:
                    return b''
                if self.loan is not None:
                    loan = self.loan
                    self.cond.release()
                    try:
                        data = loan.read(n, self.cancelled, owed)
                        if not data:
                            self.repay()
                    finally:
                        self.cond.acquire()
                    if data:
                        return data
                    continue
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
        """With cond held: waits for frames from Go."""
        if self.await_frames is None:
            self.sleep()
        else:
            self.await_frames(self)


class Input:
    """wsgi.input: the request body, pulled from Go as it is read."""

    _pending = b''       # read ahead by readline

    def __init__(self, req, length):
        self._req = req
        self._left = length       # None: until the end of the body

    def _chunk(self, n):
        if self._pending:
            data, self._pending = self._pending[:n], self._pending[n:]
            return data
        if self._left is not None:
            if self._left <= 0:
                return b''
            n = min(n, self._left)
        data = self._req.take(n, self._left)
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

    _buf = ''
    _lock = _errors_lock

    def __init__(self, chan, sid):
        self._chan = chan
        self._sid = sid

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
        if not self._buf:   # nothing held (a write racing this misses it with the lock too)
            return
        with self._lock:
            text, self._buf = self._buf, ''
        if text:
            self._chan.log(self._sid, L_ERROR, text)
