"""The web server's connection, lent by the bridge for the rest of a
request body (pyworker/lend.go): the request's FastCGI STDIN records are
read here, from the socket, instead of crossing the bridge and a pipe."""

import array
import os
import socket
import struct
import time

from . import frames

FCGI = struct.Struct('!BBHHBx')   # version, type, request id, content length, padding
FCGI_STDIN = 5
SIZE = 256 * 1024   # the read buffer: a read takes many records
SLICE = 0.5         # longest wait before another look for an abort
U64 = frames.U64
NO_TIMEVAL = struct.pack('@ll', 0, 0)


def timeval(seconds):
    """SO_RCVTIMEO's struct timeval."""
    return struct.pack('@ll', int(seconds), int(seconds % 1 * 1000000))


class Loan:
    """Reads one request's STDIN records from a lent connection. It never
    consumes a record that is not a non-empty STDIN record of its request
    (the empty one, which ends the body, included): that and everything
    after it go back to the bridge (payload).

    The socket is blocking while lent, with reads that give up after
    SLICE: a read may then wait for all the bytes it asks (MSG_WAITALL),
    one system call and one return to Python for many writes of the web
    server (nginx sends a buffered body 8 KiB at a time; the kernel
    still wakes the reader at each), and it asks no more than
    the body still owes, so it never waits for bytes that will not come
    (see _fill)."""

    __slots__ = ('fd', 'sock', 'rid', 'idle', 'buf', 'view', 'start', 'end', 'left', 'pad',
                 'taken', 'over', 'stalled')

    def __init__(self, fd, rid, idle, prefix):
        self.fd = fd
        self.sock = socket.socket(fileno=fd)
        try:
            os.set_blocking(fd, True)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                 timeval(min(SLICE, idle) if idle > 0 else SLICE))
        except OSError:
            self.sock.detach()   # the caller closes fd
            raise
        self.rid = rid
        self.idle = idle          # seconds a read may wait for bytes; 0: no limit
        self.buf = bytearray(max(SIZE, 2 * len(prefix)))
        self.view = memoryview(self.buf)
        self.buf[:len(prefix)] = prefix
        self.start, self.end = 0, len(prefix)
        self.left = 0             # content of the record under way not yet taken
        self.pad = 0              # its padding, after that content
        self.taken = 0            # body bytes taken
        self.over = False         # nothing more to read here
        self.stalled = False      # over because the idle timeout passed

    def read(self, n, cancelled, owed=None):
        """Up to n body bytes, waiting for some unless some are here; b''
        once the loan is over: the body's end, a record of another kind,
        EOF, an error, the idle timeout, or cancelled() true (asked every
        SLICE of a wait). owed: body bytes still to come (CONTENT_LENGTH
        less those read), if known."""
        if self.over:
            return b''
        parts = []
        want = n
        view = self.view
        start, left = self.start, self.left
        while want:
            if left:
                k = self.end - start
                if k > left:
                    k = left
                if k > want:
                    k = want
                if k:
                    parts.append(view[start:start + k])
                    start += k
                    left -= k
                    want -= k
                    continue
            else:
                # Between records: the padding of the last one, then a header.
                pos = start + self.pad
                if self.end - pos >= 8:
                    ver, typ, rid, clen, plen = FCGI.unpack_from(self.buf, pos)
                    if ver != 1 or typ != FCGI_STDIN or rid != self.rid or not clen:
                        start, self.pad, self.over = pos, 0, True
                        break
                    start, left, self.pad = pos + 8, clen, plen
                    continue
            # The buffer holds no more: give what is taken, or read more.
            if parts:
                break
            self.start = start
            filled = self._fill(cancelled, owed)
            start = self.start   # _fill moves the bytes to the front
            if not filled:
                break
        self.start, self.left = start, left
        if not parts:
            return b''
        data = parts[0].tobytes() if len(parts) == 1 else b''.join(parts)
        self.taken += len(data)
        return data

    def _fill(self, cancelled, owed=None):
        """Reads more; False (and over) if the loan ends instead.

        What is still on the socket is at least the body owed, less the
        bytes here (their headers only make it more), and the end record:
        a read of that many waits for all of them. Otherwise (owed unknown
        or already here: a body that ends short) it takes what comes."""
        if self.start:
            rest = self.view[self.start:self.end].tobytes()
            self.buf[:len(rest)] = rest
            self.start, self.end = 0, len(rest)
        room = len(self.buf) - self.end
        sure = 0 if owed is None else owed + 8 - self.end
        flags = socket.MSG_WAITALL if sure > 0 else 0
        ask = min(room, sure) if sure > 0 else room
        since = time.monotonic()
        while True:
            try:
                n = self.sock.recv_into(self.view[self.end:self.end + ask], ask, flags)
            except (BlockingIOError, InterruptedError):
                n = -1
            except OSError:
                n = 0
            if n > 0:
                self.end += n
                return True
            if n == 0:       # EOF or an error: the bridge will see it too
                self.over = True
                return False
            # A slice passed with nothing: look for an abort, and the clock.
            if cancelled():
                self.over = True
                return False
            if self.idle and time.monotonic() - since >= self.idle * 0.99:
                self.over = self.stalled = True
                return False

    def payload(self):
        """Closes the descriptor and returns RETURN's payload: what was
        taken, then what the bridge reads next (a header for the rest of a
        record under way, and the bytes read and not consumed)."""
        if not self.left and self.pad and self.end - self.start < self.pad:
            # A record's padding comes with it: wait for it, briefly.
            self.idle = min(self.idle or 1, 1)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval(self.idle))
            while self.end - self.start < self.pad and self._fill(lambda: False):
                pass
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, NO_TIMEVAL)
            os.set_blocking(self.fd, False)   # as the bridge's poller wants it
        except OSError:
            pass
        self.sock.close()
        if self.left:
            head = FCGI.pack(1, FCGI_STDIN, self.rid, self.left, self.pad)
            return U64.pack(self.taken) + head + self.view[self.start:self.end].tobytes()
        skip = min(self.pad, self.end - self.start)
        return U64.pack(self.taken) + self.view[self.start + skip:self.end].tobytes()


class Receiver:
    """The worker's end of the socket the bridge passes connections on
    (fd 6): a datagram per loan, the stream id with the descriptor."""

    def __init__(self, fd):
        self.sock = socket.socket(fileno=fd)
        self.early = {}   # descriptors received for another stream

    def take(self, sid):
        """The descriptor passed for stream sid, or None."""
        fd = self.early.pop(sid, None)
        while fd is None:
            try:
                msg, anc, _, _ = self.sock.recvmsg(4, socket.CMSG_SPACE(4),
                                                   socket.MSG_DONTWAIT | socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return None
            fds = array.array('i')
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:len(data) - len(data) % fds.itemsize])
            if len(msg) != 4 or len(fds) != 1:
                for f in fds:
                    os.close(f)
                continue
            got = int.from_bytes(msg, 'big')
            if got == sid:
                fd = fds[0]
            else:
                old = self.early.pop(got, None)
                if old is not None:
                    os.close(old)
                self.early[got] = fds[0]
        return fd
