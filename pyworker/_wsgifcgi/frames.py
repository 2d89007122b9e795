"""The pipe protocol with the Go bridge (pyworker/frame.go declares the same
constants): frames to Go on fd 4 (Channel), from Go on fd 3 (FrameReader).

Frame: 12-byte header (type u8, flags u8, pad u16, stream u32, length u32,
big endian) then the payload. Each side writes a frame in one system call
under a lock, so frames of concurrent requests never interleave.
"""

import io
import os
import select
import struct
import threading

# Other modules take these by assignment (HDR = frames.HDR), not by
# "from .frames import HDR": CPython 3.11+ compiles NAME.method() on a name
# an import bound as an attribute load and a call, which makes a bound
# method object on every call, once per frame here.
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
T_LEND = 7       # u16 FastCGI request id, u32 idle timeout ms, bytes read and not parsed
# worker -> Go
T_READY = 16     # "pid\0python version"
T_HEADERS = 17   # "status\0name\0value\0..." latin-1
T_DATA = 18      # response body bytes
T_WANT = 19      # u32: request body bytes the worker can take now
T_LOG = 20       # flags: level; payload: UTF-8 text
T_END = 21       # flags: outcome
T_PING = 22      # heartbeat: the interpreter can still run Python code
T_RESPONSE = 23  # flags: outcome; u32 header length, HEADERS payload, body
T_RETURN = 24    # u64 body bytes read, the bytes the bridge reads next; F_STALLED

F_NOBODY = 1
F_EOF = 1
F_ERR = 2
F_STALLED = 1

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
# Largest HEADERS payload: start_response refuses a larger header block
# (no front end takes one; nginx's fastcgi_buffer_size is a page by
# default). The bridge takes a larger frame, as any frame over its size,
# for a broken worker's, and kills it.
HEAD_MAX = 256 * 1024
# Largest LOG frame (one log record); a longer text goes in several.
LOG_MAX = 64 * 1024
# Up to this many bytes, a write's parts are joined and written with write():
# cheaper than writev's handling of each part (a small answer has four).
JOIN_MAX = 2048

class Channel:
    """Frames to Go on fd 4. Frames of concurrent requests never interleave:
    a sender appends its frames to one queue, and whoever finds no write
    under way writes everything queued, so several answers ready at once
    cost one system call. Nothing waits in the queue for a later write: a
    finished answer held back while the next request runs would wait for
    that request, however long it takes."""

    def __init__(self, fd):
        self.fd = fd
        self.lock = threading.Lock()
        self.out = []
        self.writing = False

    def send(self, parts):
        lock = self.lock
        lock.acquire()
        if self.writing:
            self.out += parts
            lock.release()
            return
        self.writing = True
        lock.release()
        try:
            while True:
                self._write(parts)
                lock.acquire()
                parts = self.out
                if not parts:
                    self.writing = False
                    lock.release()
                    return
                self.out = []
                lock.release()
        except BaseException:
            with lock:
                self.writing = False
            raise

    def _write(self, parts, write=os.write, writev=os.writev):
        total = sum(map(len, parts))
        if total <= JOIN_MAX or len(parts) > 64:
            n = write(self.fd, b''.join(parts))
        else:
            n = writev(self.fd, parts)
        if n == total:
            return
        # A signal or a full pipe cut the write short: finish it byte-exact.
        rest = memoryview(b''.join(parts))[n:]
        while rest:
            rest = rest[write(self.fd, rest):]

    def frame(self, typ, sid, payload=b'', flags=0):
        self.send([HDR.pack(typ, flags, sid, len(payload)), payload])

    def log(self, sid, level, text):
        """Sends text as LOG frames: a long one is cut at its last newline
        within LOG_MAX bytes, or else between two characters."""
        data = text.encode('utf-8', 'replace')
        start = 0
        while len(data) - start > LOG_MAX:
            cut = data.rfind(b'\n', start, start + LOG_MAX)
            if cut > start:
                self.frame(T_LOG, sid, data[start:cut], level)
                start = cut + 1
                continue
            cut = start + LOG_MAX
            while data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte
                cut -= 1
            self.frame(T_LOG, sid, data[start:cut], level)
            start = cut
        self.frame(T_LOG, sid, data[start:], level)  # data itself when start is 0


class FrameReader:
    """Frames from Go on fd 3, read into one reused buffer (a fresh 256 KiB
    bytes object per read costs an mmap, an mremap and a munmap) and parsed
    out of it, so that whether a whole frame is already here is known
    (inline mode polls with it)."""

    SIZE = 256 * 1024

    def __init__(self, fd):
        self.file = io.FileIO(fd, 'rb', closefd=False)
        self.buf = bytearray(self.SIZE)
        self.view = memoryview(self.buf)
        self.start = 0     # first byte not parsed yet
        self.end = 0       # end of the bytes read
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
            if not self._fill(want):
                return None

    # The next frame if it is all in the buffer, else None; no reading.
    next_buffered = _frame

    def read_nowait(self):
        """The next frame if it can be had without waiting, else None."""
        f = self._frame()
        if f is None and self.poller.poll(0):
            if not self._fill(1):
                raise EOFError
            f = self._frame()
        return f
