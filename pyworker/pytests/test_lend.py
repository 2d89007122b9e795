"""lend: a request's STDIN records read from a lent connection (Loan), and
the descriptors passed on the worker's datagram socket (Receiver)."""

import os
import random
import select
import socket
import struct
import threading
import time
import unittest

from _wsgifcgi.lend import SIZE, Loan, Receiver

FCGI = struct.Struct('!BBHHBx')   # parsed here independently of lend.FCGI
U64 = struct.Struct('!Q')
STDIN, ABORT, BEGIN = 5, 2, 1
RID = 7


def record(content, rid=RID, typ=STDIN, pad=0, version=1):
    """One FastCGI record; its padding is b'P's, never in a test's body."""
    return FCGI.pack(version, typ, rid, len(content), pad) + content + b'P' * pad


def records(body, sizes, rid=RID, pads=(0,)):
    """body cut into STDIN records of the given sizes and paddings, each
    taken in turn; no end record."""
    out, pos, i = [], 0, 0
    while pos < len(body):
        size = sizes[i % len(sizes)]
        out.append(record(body[pos:pos + size], rid, pad=pads[i % len(pads)]))
        pos, i = pos + size, i + 1
    return b''.join(out)


def pattern(n, seed=0):
    """n bytes without b'P' (the padding) and without a repeat short enough
    to hide a misplaced slice."""
    return bytes((i * 7 + i // 251 + seed) % 80 for i in range(n))


def never():
    return False


def parse(data):
    """The records in data as (version, type, rid, content, padding), and
    the incomplete rest."""
    out = []
    while len(data) >= 8:
        ver, typ, rid, clen, plen = FCGI.unpack_from(data)
        if len(data) < 8 + clen + plen:
            break
        out.append((ver, typ, rid, data[8:8 + clen], data[8 + clen:8 + clen + plen]))
        data = data[8 + clen + plen:]
    return out, data


class LoanTest(unittest.TestCase):

    def setUp(self):
        # sock is the bridge's connection, whose duplicate the worker gets.
        self.sock, self.peer = socket.socketpair()
        self.sock.setblocking(False)
        self.addCleanup(self.sock.close)
        self.addCleanup(self.peer.close)

    def loan(self, prefix=b'', idle=0, rid=RID):
        loan = Loan(os.dup(self.sock.fileno()), rid, idle, prefix)
        self.addCleanup(loan.sock.close)
        return loan

    def send_later(self, *pieces, pause=0.02):
        """Writes the pieces from a thread, a pause before each."""
        def run():
            for piece in pieces:
                time.sleep(pause)
                self.peer.sendall(piece)
        t = threading.Thread(target=run)
        t.start()
        self.addCleanup(t.join)
        return t

    def read_all(self, loan, n=1 << 20, cancelled=never):
        """Reads until b''; the reads."""
        out = []
        for _ in range(100000):
            data = loan.read(n, cancelled)
            self.assertIsInstance(data, bytes)
            self.assertLessEqual(len(data), n)
            if not data:
                return out
            out.append(data)
        self.fail('no end')

    def split(self, payload):
        taken, = U64.unpack_from(payload)
        return taken, payload[8:]

    def rest(self, n, timeout=5.0):
        """The next n bytes in the bridge's connection."""
        data = b''
        deadline = time.monotonic() + timeout
        while len(data) < n:
            if not select.select([self.sock], [], [], max(0, deadline - time.monotonic()))[0]:
                self.fail('%d bytes of %d' % (len(data), n))
            got = self.sock.recv(n - len(data))
            if not got:
                self.fail('EOF after %d bytes of %d' % (len(data), n))
            data += got
        return data

    def nothing_more(self):
        self.assertEqual(select.select([self.sock], [], [], 0)[0], [])

    def assert_returned(self, payload, taken, following):
        """payload says taken, and its leftover and what the bridge reads
        after it are following: how much of it was read before the loan
        ended depends on how the bytes arrived."""
        self.assertEqual(self.split(payload)[0], taken)
        leftover = self.split(payload)[1]
        self.assertEqual(leftover, following[:len(leftover)])
        self.assertEqual(leftover + self.rest(len(following) - len(leftover)), following)
        self.nothing_more()

    # The body, whole.

    def test_body_in_records_read_in_various_sizes(self):
        body = pattern(5000)
        trailer = record(b'\0\1\0\0\0\0\0\0', 9, BEGIN) + record(b'next', 9)
        end = record(b'')
        self.peer.sendall(records(body, [1, 100, 7, 3000, 1, 50, 10000]) + end + trailer)
        loan = self.loan()
        got, pos = [], 0
        for n in (3, 1, 1, 200, 6, 1500, 2000, 1, 10000):
            data = loan.read(n, never)
            self.assertEqual(len(data), min(n, len(body) - pos), 'read(%d) at %d' % (n, pos))
            got.append(data)
            pos += len(data)
        self.assertEqual(b''.join(got), body)
        self.assertEqual(loan.read(10, never), b'')
        self.assertEqual(loan.read(10, never), b'')
        self.assertEqual(loan.taken, len(body))
        self.assertFalse(loan.stalled)
        self.assertEqual(loan.payload(), U64.pack(len(body)) + end + trailer)

    def test_one_read_spans_every_record(self):
        body = pattern(3000, 1)
        self.peer.sendall(records(body, [10] * 300) + record(b''))
        loan = self.loan()
        self.assertEqual(loan.read(len(body) + 1, never), body)
        self.assertEqual(loan.read(1, never), b'')
        self.assertEqual(loan.payload(), U64.pack(len(body)) + record(b''))

    def test_the_end_record_alone(self):
        self.peer.sendall(record(b'') + b'after')
        loan = self.loan()
        self.assertEqual(loan.read(100, never), b'')
        self.assertEqual(loan.taken, 0)
        self.assertEqual(loan.payload(), U64.pack(0) + record(b'') + b'after')

    def test_padding_is_skipped(self):
        body = pattern(4000, 2)
        end = record(b'', pad=3)
        self.peer.sendall(records(body, [1, 2, 3, 250, 500, 17] * 3, pads=(1, 255, 7, 0, 8, 200))
                          + end + b'x')
        loan = self.loan()
        got = self.read_all(loan, 333)
        self.assertEqual(b''.join(got), body)
        # The end record's padding is the bridge's to read.
        self.assertEqual(loan.payload(), U64.pack(len(body)) + end + b'x')

    def test_a_read_takes_what_is_there(self):
        body = pattern(100, 3)
        data = record(body, pad=4) + record(b'')
        self.peer.sendall(data[:8 + 10])
        loan = self.loan()
        self.assertEqual(loan.read(50, never), body[:10])   # does not wait for 50
        self.send_later(data[18:])
        self.assertEqual(loan.read(50, never), body[10:60])
        self.assertEqual(loan.read(50, never), body[60:])
        self.assertEqual(loan.read(50, never), b'')
        self.assertEqual(loan.payload(), U64.pack(100) + record(b''))

    def test_a_read_waits_for_bytes(self):
        loan = self.loan()
        self.send_later(record(b'late'), pause=0.1)
        self.assertEqual(loan.read(10, never), b'late')
        self.assertFalse(loan.over)

    def test_a_body_larger_than_the_buffer(self):
        body = pattern(3 * SIZE + 12345, 4)
        data = records(body, [65535, 1, 40000, 65535, 3], pads=(0, 255, 1)) + record(b'')
        self.send_later(*[data[i:i + 100000] for i in range(0, len(data), 100000)], pause=0)
        loan = self.loan()
        got = []
        sizes = (1, 70000, 5, SIZE + 1, 65535, 1000)
        for i in range(10000):
            chunk = loan.read(sizes[i % len(sizes)], never)
            if not chunk:
                break
            got.append(chunk)
        self.assertEqual(b''.join(got), body)
        self.assertEqual(loan.taken, len(body))
        self.assertEqual(loan.payload(), U64.pack(len(body)) + record(b''))

    # What the body still owes: a read waits for it all (MSG_WAITALL).

    def test_a_read_waits_for_what_the_body_owes(self):
        body = pattern(200000, 5)
        data = records(body, [16384]) + record(b'')
        self.send_later(*[data[i:i + 16392] for i in range(0, len(data), 16392)], pause=0.01)
        loan = self.loan()
        got, reads = [], 0
        while True:
            chunk = loan.read(1 << 20, never, len(body) - sum(map(len, got)))
            if not chunk:
                break
            got.append(chunk)
            reads += 1
        self.assertEqual(b''.join(got), body)
        # A read of what is owed takes all but the last record's head at
        # once, where a read of what is there would take each write alone.
        self.assertLessEqual(reads, 3)
        self.assertEqual(loan.payload(), U64.pack(len(body)) + record(b''))

    def test_a_body_that_ends_short_of_what_it_owes(self):
        body = pattern(30000, 6)
        self.peer.sendall(records(body, [16384]) + record(b''))
        loan = self.loan()
        start = time.monotonic()
        got = []
        while True:
            chunk = loan.read(1 << 20, never, 100000 - sum(map(len, got)))
            if not chunk:
                break
            got.append(chunk)
        self.assertLess(time.monotonic() - start, 2)
        self.assertEqual(b''.join(got), body)
        self.assertEqual(loan.payload(), U64.pack(len(body)) + record(b''))

    # Bytes in pieces.

    def test_records_split_at_awkward_places(self):
        body = pattern(300, 5)
        r1, r2, r3 = record(body[:100], pad=5), record(body[100:101], pad=3), record(body[101:], pad=2)
        end = record(b'', pad=1)
        cuts = [r1[:3],                          # a header in three writes
                r1[3:7], r1[7:8] + body[:1],
                r1[9:108] + b'PP', b'P', b'PP',  # the padding in three
                r2[:8], r2[8:9], r2[9:11], r2[11:] + r3[:1],
                r3[1:8] + body[101:150],
                r3[8 + 49:] + end[:2], end[2:]]
        self.assertEqual(b''.join(cuts), r1 + r2 + r3 + end)
        self.send_later(*cuts)
        loan = self.loan()
        self.assertEqual(b''.join(self.read_all(loan, 1000)), body)
        self.assert_returned(loan.payload(), 300, end)

    def test_every_byte_in_its_own_write(self):
        body = pattern(40, 6)
        data = records(body, [1, 2, 30, 7], pads=(2, 0, 1)) + record(b'', pad=2)
        self.send_later(*[data[i:i + 1] for i in range(len(data))], pause=0.003)
        loan = self.loan()
        self.assertEqual(b''.join(self.read_all(loan, 7)), body)
        self.assert_returned(loan.payload(), 40, record(b'', pad=2))

    # What the bridge read first.

    def test_prefix_holds_a_record_and_part_of_a_header(self):
        body = pattern(500, 7)
        r1, r2 = record(body[:200], pad=6), record(body[200:], pad=2)
        self.peer.sendall(r2[5:] + record(b''))
        loan = self.loan(r1 + r2[:5])
        self.assertEqual(loan.read(1000, never), body[:200])
        self.assertEqual(loan.read(1000, never), body[200:])
        self.assertEqual(loan.read(1000, never), b'')
        self.assertEqual(loan.payload(), U64.pack(500) + record(b''))

    def test_prefix_holds_part_of_a_content(self):
        body = pattern(500, 8)
        r1 = record(body, pad=9)
        self.peer.sendall(r1[18:] + record(b''))
        loan = self.loan(r1[:18])
        self.assertEqual(loan.read(5, never), body[:5])
        self.assertEqual(b''.join(self.read_all(loan)), body[5:])
        self.assertEqual(loan.payload(), U64.pack(500) + record(b''))

    def test_prefix_holds_the_whole_body(self):
        body = pattern(700, 9)
        data = records(body, [300, 300, 100], pads=(1,)) + record(b'') + b'more'
        loan = self.loan(data)
        self.assertEqual(b''.join(self.read_all(loan, 256)), body)
        self.assertEqual(loan.payload(), U64.pack(700) + record(b'') + b'more')
        self.nothing_more()

    def test_prefix_larger_than_the_buffer(self):
        body = pattern(2 * SIZE, 10)
        data = records(body, [65535] * 100, pads=(3,))
        self.peer.sendall(record(b'') + b'z')
        loan = self.loan(data)
        self.assertEqual(b''.join(self.read_all(loan, 100000)), body)
        self.assertEqual(loan.payload(), U64.pack(len(body)) + record(b'') + b'z')

    def test_prefix_ends_in_the_padding(self):
        body = pattern(50, 11)
        r1 = record(body, pad=10)
        self.peer.sendall(r1[-6:] + record(b''))
        loan = self.loan(r1[:-6])
        self.assertEqual(b''.join(self.read_all(loan)), body)
        self.assertEqual(loan.payload(), U64.pack(50) + record(b''))

    # Records that are not the loan's.

    def test_a_record_of_another_request_ends_the_loan(self):
        body = pattern(120, 12)
        other = record(b'theirs', rid=RID + 1, pad=2)
        after = record(body[100:])
        self.peer.sendall(records(body[:100], [60], pads=(4,)) + other + after)
        loan = self.loan()
        self.assertEqual(loan.read(1000, never), body[:100])
        self.assertEqual(loan.read(1000, never), b'')
        self.assertEqual(loan.read(1000, never), b'')
        self.assertTrue(loan.over)
        self.assertFalse(loan.stalled)
        self.assertEqual(loan.payload(), U64.pack(100) + other + after)

    def test_a_record_of_another_request_in_a_read_under_way(self):
        body = pattern(10, 13)
        other = record(b'', rid=1)
        self.peer.sendall(record(body[:4]) + other + record(body[4:]))
        loan = self.loan()
        self.assertEqual(loan.read(10, never), body[:4])   # only what was its own
        self.assertEqual(loan.read(10, never), b'')
        self.assertEqual(loan.payload(), U64.pack(4) + other + record(body[4:]))

    def test_abort_ends_the_loan(self):
        body = pattern(30, 14)
        abort = record(b'', typ=ABORT)
        self.peer.sendall(record(body) + abort)
        loan = self.loan()
        self.assertEqual(loan.read(100, never), body)
        self.assertEqual(loan.read(100, never), b'')
        self.assertEqual(loan.payload(), U64.pack(30) + abort)

    def test_records_of_other_types_end_the_loan(self):
        for typ in (1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 255):
            with self.subTest(typ=typ):
                self.setUp()
                foreign = record(b'stdin?', typ=typ, pad=1)
                self.peer.sendall(foreign + record(b'body'))
                loan = self.loan()
                self.assertEqual(loan.read(100, never), b'')
                self.assertEqual(loan.payload(), U64.pack(0) + foreign + record(b'body'))

    def test_a_bad_version_ends_the_loan(self):
        for version in (0, 2, 255):
            with self.subTest(version=version):
                self.setUp()
                bad = record(b'abc', version=version)
                self.peer.sendall(record(b'12') + bad + record(b'34'))
                loan = self.loan()
                self.assertEqual(loan.read(100, never), b'12')
                self.assertEqual(loan.read(100, never), b'')
                self.assertEqual(loan.payload(), U64.pack(2) + bad + record(b'34'))

    def test_a_foreign_record_in_the_prefix(self):
        foreign = record(b'x', rid=0)
        loan = self.loan(record(b'mine') + foreign)
        self.assertEqual(loan.read(100, never), b'mine')
        self.assertEqual(loan.read(100, never), b'')
        self.assertEqual(loan.payload(), U64.pack(4) + foreign)
        self.nothing_more()

    # Stopping in the middle.

    def resume(self, payload, n=1000):
        """What a fresh loan makes of a RETURN's leftover and what follows
        it on the connection: its reads and its payload."""
        loan = self.loan(self.split(payload)[1])
        return b''.join(self.read_all(loan, n)), loan.payload()

    def test_stopping_in_the_middle_of_a_record(self):
        body = pattern(1300, 15)
        r1, r2, end = record(body[:1000], pad=5), record(body[1000:]), record(b'')
        self.peer.sendall(r1 + r2 + end)
        loan = self.loan()
        self.assertEqual(loan.read(400, never), body[:400])
        payload = loan.payload()
        taken, leftover = self.split(payload)
        self.assertEqual(taken, 400)
        self.assertEqual(leftover[:8], FCGI.pack(1, STDIN, RID, 600, 5))
        self.assertEqual(leftover[8:], r1[8 + 400:] + r2 + end)
        self.assertEqual(parse(leftover), ([(1, STDIN, RID, body[400:1000], b'PPPPP'),
                                            (1, STDIN, RID, body[1000:], b''),
                                            (1, STDIN, RID, b'', b'')], b''))
        self.assertEqual(self.resume(payload), (body[400:], U64.pack(900) + end))

    def test_stopping_before_the_rest_of_a_record_arrived(self):
        body = pattern(1000, 16)
        r1, end = record(body, rid=RID, pad=200), record(b'')
        self.peer.sendall(r1[:8 + 500])
        loan = self.loan()
        self.assertEqual(loan.read(450, never), body[:450])
        payload = loan.payload()
        self.assertEqual(payload, U64.pack(450) + FCGI.pack(1, STDIN, RID, 550, 200) + body[450:500])
        self.peer.sendall(r1[8 + 500:] + end)
        self.assertEqual(self.resume(payload, 77), (body[450:], U64.pack(550) + end))

    def test_stopping_at_the_end_of_a_content(self):
        body = pattern(64, 17)
        r1, r2 = record(body[:32], pad=3), record(body[32:], pad=1)
        self.peer.sendall(r1 + r2)
        loan = self.loan()
        self.assertEqual(loan.read(32, never), body[:32])
        self.assertEqual(loan.payload(), U64.pack(32) + r2)   # the padding skipped
        self.nothing_more()

    def test_stopping_before_the_padding_arrived(self):
        body = pattern(64, 18)
        r1, r2 = record(body[:32], pad=30), record(body[32:], pad=1)
        self.peer.sendall(r1[:8 + 32 + 10])
        loan = self.loan()
        self.assertEqual(loan.read(100, never), body[:32])
        self.send_later(r1[-20:-10], r1[-10:] + r2, pause=0.05)
        self.assert_returned(loan.payload(), 32, r2)   # it waited for the padding

    def test_stopping_between_records_with_more_read(self):
        body = pattern(90, 19)
        r1, r2 = record(body[:40], pad=2), record(body[40:], pad=2)
        self.peer.sendall(r1 + r2 + record(b''))
        loan = self.loan()
        self.assertEqual(loan.read(40, never), body[:40])
        payload = loan.payload()
        self.assertEqual(payload, U64.pack(40) + r2 + record(b''))
        self.assertEqual(self.resume(payload), (body[40:], U64.pack(50) + record(b'')))

    def test_stopping_after_nothing(self):
        loan = self.loan(record(b'abc'))
        self.assertEqual(loan.payload(), U64.pack(0) + record(b'abc'))
        loan = self.loan()
        self.assertEqual(loan.payload(), U64.pack(0))

    def test_payload_closes_the_descriptor(self):
        self.peer.sendall(record(b'ab'))
        loan = self.loan()
        fd = loan.fd
        os.fstat(fd)
        self.assertEqual(loan.read(1, never), b'a')
        self.assertEqual(loan.payload(), U64.pack(1) + FCGI.pack(1, STDIN, RID, 1, 0) + b'b')
        with self.assertRaises(OSError):
            os.fstat(fd)
        # The bridge's own descriptor is left alone.
        self.peer.sendall(b'more')
        self.assertEqual(self.rest(4), b'more')

    # Ends of another kind.

    def test_eof_ends_the_loan(self):
        body = pattern(20, 20)
        self.peer.sendall(record(body, pad=1))
        self.peer.close()
        loan = self.loan()
        self.assertEqual(loan.read(100, never), body)
        self.assertEqual(loan.read(100, never), b'')
        self.assertTrue(loan.over)
        self.assertFalse(loan.stalled)
        self.assertEqual(loan.payload(), U64.pack(20))

    def test_eof_in_the_middle_of_a_record(self):
        body = pattern(20, 21)
        self.peer.sendall(record(body, pad=4)[:8 + 12])
        self.peer.shutdown(socket.SHUT_WR)
        loan = self.loan()
        self.assertEqual(b''.join(self.read_all(loan)), body[:12])
        self.assertFalse(loan.stalled)
        self.assertEqual(loan.payload(), U64.pack(12) + FCGI.pack(1, STDIN, RID, 8, 4))

    def test_eof_in_a_header(self):
        self.peer.sendall(record(b'ab') + record(b'cd')[:5])
        self.peer.close()
        loan = self.loan()
        self.assertEqual(b''.join(self.read_all(loan)), b'ab')
        self.assertEqual(loan.payload(), U64.pack(2) + record(b'cd')[:5])

    def test_idle_timeout(self):
        loan = self.loan(idle=0.2)
        t0 = time.monotonic()
        self.assertEqual(loan.read(10, never), b'')
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.15)
        self.assertLess(elapsed, 1.0)
        self.assertTrue(loan.stalled)
        self.assertTrue(loan.over)
        self.assertEqual(loan.read(10, never), b'')
        self.assertEqual(loan.payload(), U64.pack(0))

    def test_idle_timeout_in_the_middle_of_a_record(self):
        body = pattern(100, 22)
        self.peer.sendall(record(body)[:8 + 30])
        loan = self.loan(idle=0.2)
        self.assertEqual(loan.read(1000, never), body[:30])
        t0 = time.monotonic()
        self.assertEqual(loan.read(1000, never), b'')
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertTrue(loan.stalled)
        self.assertEqual(loan.payload(), U64.pack(30) + FCGI.pack(1, STDIN, RID, 70, 0))

    def test_the_idle_time_is_per_wait(self):
        body = pattern(6, 23)
        data = record(body)
        loan = self.loan(idle=0.3)
        self.send_later(*[data[i:i + 2] for i in range(0, len(data), 2)], pause=0.1)
        self.assertEqual(self.read_all(loan, 2), [body[:2], body[2:4], body[4:]])   # 0.7 s in all
        self.assertTrue(loan.stalled)

    def test_cancelled_ends_a_wait(self):
        loan = self.loan()
        flag = threading.Event()
        timer = threading.Timer(0.1, flag.set)
        timer.start()
        self.addCleanup(timer.join)
        t0 = time.monotonic()
        self.assertEqual(loan.read(10, flag.is_set), b'')
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertTrue(loan.over)
        self.assertFalse(loan.stalled)
        self.assertEqual(loan.read(10, never), b'')
        self.peer.sendall(record(b'late'))
        self.assertEqual(loan.payload(), U64.pack(0))
        self.assertEqual(self.rest(12), record(b'late'))

    def test_cancelled_in_the_middle_of_a_record(self):
        body = pattern(50, 24)
        self.peer.sendall(record(body, pad=1)[:8 + 20])
        loan = self.loan()
        self.assertEqual(loan.read(100, lambda: True), body[:20])   # not asked: bytes were there
        self.assertEqual(loan.read(100, lambda: True), b'')
        self.assertFalse(loan.stalled)
        self.assertEqual(loan.payload(), U64.pack(20) + FCGI.pack(1, STDIN, RID, 30, 1))


class RandomStreamTest(unittest.TestCase):
    """Random streams, prefixes, read sizes and stops, against parse: what
    the loan reads and what it gives back (RETURN's leftover, then the rest
    of the connection) are always the stream, cut at one point."""

    TRIALS = 400

    def trial(self, rng):
        body = pattern(rng.choice((0, 1, rng.randrange(1, 3000))), rng.randrange(80))
        sizes = [rng.randrange(1, 800) for _ in range(4)]
        pads = [rng.randrange(0, 8) for _ in range(3)]
        trailer = rng.choice((
            record(b''),                                        # the end of the body
            record(b'') + record(b'\0\1\0\0\0\0\0\0', 9, BEGIN),  # and a next request
            record(b'other', RID + 1, pad=3),                   # another request's STDIN
            record(b'', typ=ABORT),                             # another type
        ))
        stream = records(body, sizes, pads=pads) + trailer
        cut = rng.randrange(0, len(stream) + 1)
        owed = rng.random() < 0.5
        sock, peer = socket.socketpair()
        sock.setblocking(False)
        try:
            peer.sendall(stream[cut:])
            loan = Loan(os.dup(sock.fileno()), RID, 1, stream[:cut])   # a stall fails, not hangs
            got = b''
            for _ in range(rng.randrange(0, 12)):
                data = loan.read(rng.randrange(1, 2000), never,
                                 len(body) - len(got) if owed else None)
                if not data:
                    break
                got += data
            payload = loan.payload()
            rest = b''
            while select.select([sock], [], [], 0)[0]:
                rest += sock.recv(1 << 16)
        finally:
            sock.close()
            peer.close()
        taken, leftover = U64.unpack_from(payload)[0], payload[8:]
        self.assertEqual(taken, len(got))
        self.assertEqual(got, body[:taken])
        after, partial = parse(leftover + rest)
        own = 0
        while own < len(after) and after[own][1:3] == (STDIN, RID) and after[own][3]:
            own += 1
        self.assertEqual(b''.join(r[3] for r in after[:own]), body[taken:])
        self.assertTrue(all(r[0] == 1 and r[4] == b'P' * len(r[4]) for r in after[:own]))
        self.assertEqual((after[own:], partial), parse(trailer))

    def test_random_streams(self):
        for seed in range(self.TRIALS):
            with self.subTest(seed=seed):
                self.trial(random.Random(seed))


class NotASocketTest(unittest.TestCase):

    def test_a_descriptor_that_is_not_a_socket(self):
        # The worker answers such a LEND at once; the descriptor stays the
        # caller's to close.
        r, w = os.pipe()
        self.addCleanup(os.close, w)
        with self.assertRaises(OSError):
            Loan(r, RID, 0, b'')
        os.fstat(r)
        os.close(r)


class ReceiverTest(unittest.TestCase):

    def setUp(self):
        self.fds = set()   # descriptors of the test's to close
        self.addCleanup(lambda: [os.close(fd) for fd in self.fds])
        self.bridge, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.bridge.close)
        self.receiver = Receiver(worker.detach())
        self.addCleanup(self.receiver.sock.close)
        self.addCleanup(lambda: [os.close(fd) for fd in self.receiver.early.values()])

    def pipe(self):
        r, w = os.pipe()
        self.fds.update((r, w))
        return r, w

    def close(self, fd):
        self.fds.remove(fd)
        os.close(fd)

    def send(self, sid, *fds, msg=None):
        socket.send_fds(self.bridge, [sid.to_bytes(4, 'big') if msg is None else msg], list(fds))

    def take(self, sid):
        fd = self.receiver.take(sid)
        if fd is not None:
            self.assertNotIn(fd, self.fds)
            self.fds.add(fd)
        return fd

    def assert_closed(self, w):
        """The read end of w's pipe, passed and closed here, was closed
        there too: no reader is left."""
        with self.assertRaises(BrokenPipeError):
            os.write(w, b'x')

    def assert_connected(self, w, r):
        os.write(w, b'hello')
        self.assertEqual(os.read(r, 10), b'hello')

    def test_descriptors_for_their_streams(self):
        r1, w1 = self.pipe()
        r2, w2 = self.pipe()
        self.send(2, w2)
        self.send(1, r1)
        got1 = self.take(1)
        self.assertIsNotNone(got1)
        self.assert_connected(w1, got1)
        got2 = self.take(2)
        self.assertIsNotNone(got2)
        self.assert_connected(got2, r2)
        t0 = time.monotonic()
        self.assertIsNone(self.take(3))
        self.assertIsNone(self.take(1))
        self.assertIsNone(self.take(2))
        self.assertLess(time.monotonic() - t0, 0.1)

    def test_nothing_waiting(self):
        self.assertIsNone(self.take(0))
        self.assertIsNone(self.take(0xffffffff))
        self.assertEqual(self.receiver.early, {})

    def test_a_sid_is_four_bytes_big_endian(self):
        r, w = self.pipe()
        self.send(0x01020304, r)
        self.assertIsNone(self.take(0x04030201))
        self.assert_connected(w, self.take(0x01020304))

    def test_many_in_order_and_out_of_order(self):
        pipes = [self.pipe() for _ in range(6)]
        for sid, (r, _) in enumerate(pipes):
            self.send(sid + 10, r)
        for sid in (10, 11, 15, 12, 14, 13):
            self.assert_connected(pipes[sid - 10][1], self.take(sid))
        self.assertIsNone(self.take(10))
        self.assertEqual(self.receiver.early, {})

    def test_a_descriptor_sent_after_a_miss(self):
        r, w = self.pipe()
        self.assertIsNone(self.take(8))
        self.send(8, r)
        self.assert_connected(w, self.take(8))

    def test_received_descriptors_are_not_inherited(self):
        r, _ = self.pipe()
        os.set_inheritable(r, True)
        self.send(4, r)
        self.assertFalse(os.get_inheritable(self.take(4)))

    def test_a_second_descriptor_for_a_stream_replaces_the_first(self):
        r1, w1 = self.pipe()
        r2, w2 = self.pipe()
        self.send(5, r1)
        self.send(5, r2)
        self.close(r1)
        self.close(r2)
        self.assertIsNone(self.take(4))
        self.assert_closed(w1)
        self.assert_connected(w2, self.take(5))
        self.assertIsNone(self.take(5))

    def test_bad_datagrams_are_dropped(self):
        pipes = [self.pipe() for _ in range(6)]
        good_r, good_w = self.pipe()
        self.send(1, pipes[0][0], msg=b'\0\0\1')                   # a short stream id
        self.send(1, pipes[1][0], pipes[2][0])                      # two descriptors
        self.send(1, pipes[3][0], pipes[4][0], pipes[5][0])         # three
        self.bridge.send(b'\0\0\0\1')                             # none
        self.send(1, good_r)
        for r, _ in pipes:
            self.close(r)
        self.assert_connected(good_w, self.take(1))
        for i, (_, w) in enumerate(pipes):
            with self.subTest(i=i):
                self.assert_closed(w)
        self.assertIsNone(self.take(1))
        self.assertEqual(self.receiver.early, {})


if __name__ == '__main__':
    unittest.main()
