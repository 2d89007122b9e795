"""The Go side of a worker's two pipes, for the tests."""

import fcntl
import os
import select
import struct
import time

from _wsgifcgi.frames import Channel, FrameReader

F_SETPIPE_SZ = 1031
HEADER = struct.Struct('!BBxxII')   # parsed here independently of frames.HDR


class Wire:
    """Both pipes between Go and a worker. The worker's ends are chan (a
    Channel) and frames (a FrameReader);
    the test speaks for Go with send() and received()."""

    def __init__(self):
        self.from_worker, worker_w = os.pipe()
        worker_r, self.to_worker = os.pipe()
        self.fds = [self.from_worker, worker_w, worker_r, self.to_worker]
        for fd in (worker_w, self.to_worker):
            try:
                fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
            except OSError:
                pass
        self.chan = Channel(worker_w)
        self.frames = FrameReader(worker_r)
        self.buf = b''

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass

    def close_to_worker(self):
        """EOF for the worker's FrameReader (once)."""
        if self.to_worker in self.fds:
            os.close(self.to_worker)
            self.fds.remove(self.to_worker)

    @staticmethod
    def frame(typ, sid, payload=b'', flags=0):
        return HEADER.pack(typ, flags, sid, len(payload)) + payload

    def send(self, typ, sid, payload=b'', flags=0):
        """Writes one frame toward the worker."""
        self.write(self.frame(typ, sid, payload, flags))

    def write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.to_worker, view):]

    def pending(self):
        """Whether the worker wrote bytes not read yet."""
        return bool(select.select([self.from_worker], [], [], 0)[0])

    def received(self, count=None, timeout=5.0):
        """The frames the worker sent, as (type, flags, stream, payload): all
        that are there now, or, with count, waits until count arrived."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            while len(self.buf) >= HEADER.size:
                typ, flags, sid, n = HEADER.unpack_from(self.buf)
                if len(self.buf) < HEADER.size + n:
                    break
                out.append((typ, flags, sid, self.buf[HEADER.size:HEADER.size + n]))
                self.buf = self.buf[HEADER.size + n:]
            if count is not None and len(out) >= count:
                return out
            wait = 0 if count is None else deadline - time.monotonic()
            if wait < 0:
                raise AssertionError('got %d frames of %d: %r' % (len(out), count, out))
            if not select.select([self.from_worker], [], [], wait)[0]:
                if count is None:
                    return out
                continue
            data = os.read(self.from_worker, 1 << 20)
            if not data:
                if count is not None:
                    raise AssertionError('EOF after %d frames of %d: %r' % (len(out), count, out))
                return out
            self.buf += data
