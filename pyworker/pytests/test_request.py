"""request: the body in (wsgi.input, WANT), the send window, aborts, and
wsgi.errors."""

import threading
import time
import unittest

from _wsgifcgi.frames import (BODY_WINDOW, F_EOF, F_ERR, L_ERROR, LOG_MAX, SEND_WINDOW, T_LOG,
                              T_WANT, U32)
from _wsgifcgi.request import Aborted, Errors, Input, Request

from .wire import Wire


class RequestTest(unittest.TestCase):

    def setUp(self):
        self.wire = Wire()
        self.addCleanup(self.wire.close)
        self.req = Request(5, b'', False, self.wire.chan, threading.Condition(threading.Lock()))

    def later(self, fn, *args):
        """Runs fn as the reader thread would, once the runner waits."""
        t = threading.Timer(0.05, fn, args)
        t.start()
        self.addCleanup(t.join)

    def wants(self):
        return [U32.unpack(p)[0] for typ, _, sid, p in self.wire.received() if typ == T_WANT and sid == 5]

    def test_read_all(self):
        for chunk in (b'ab', b'', b'cd\nef'):
            self.req.feed(chunk, 0)
        self.req.feed(b'\ng', F_EOF)
        self.assertEqual(Input(self.req, None).read(), b'abcd\nef\ng')

    def test_read_sizes_and_lines(self):
        self.req.feed(b'one\ntw', 0)
        self.req.feed(b'o\nthree\nfour', F_EOF)
        body = Input(self.req, None)
        self.assertEqual(body.read(2), b'on')
        self.assertEqual(body.readline(), b'e\n')
        self.assertEqual(body.readline(2), b'tw')
        self.assertEqual(body.readline(), b'o\n')
        self.assertEqual(body.read(4), b'thre')
        self.assertEqual(list(body), [b'e\n', b'four'])
        self.assertEqual(body.read(), b'')
        self.assertEqual(body.readline(), b'')

    def test_readlines_hint(self):
        self.req.feed(b'a\nbb\nccc\n', F_EOF)
        self.assertEqual(Input(self.req, None).readlines(3), [b'a\n', b'bb\n'])

    def test_content_length_bounds_the_body(self):
        self.req.feed(b'12345678', F_EOF)
        body = Input(self.req, 5)
        self.assertEqual(body.read(), b'12345')
        self.assertEqual(body.read(1), b'')

    def test_read_waits_for_the_body(self):
        self.later(self.req.feed, b'late', F_EOF)
        self.assertEqual(Input(self.req, None).read(), b'late')

    def test_consumed_body_is_granted_again(self):
        half = BODY_WINDOW // 2
        self.req.feed(b'x' * BODY_WINDOW, 0)
        body = Input(self.req, None)
        body.read(half - 1)
        self.assertEqual(self.wants(), [])
        body.read(1)
        self.assertEqual(self.wants(), [half])

    def test_read_body_is_granted_before_waiting(self):
        self.req.feed(b'x' * 100, 0)
        body = Input(self.req, None)
        body.read(100)
        self.assertEqual(self.wants(), [])
        self.later(self.req.feed, b'', F_EOF)
        self.assertEqual(body.read(1), b'')
        self.assertEqual(self.wants(), [100])

    def test_no_grant_after_the_end(self):
        self.req.feed(b'x' * BODY_WINDOW, F_EOF)
        Input(self.req, None).read()
        self.assertEqual(self.wants(), [])

    def test_abort_and_failed_body(self):
        self.later(self.req.abort)
        with self.assertRaises(Aborted):
            Input(self.req, None).read()
        req = Request(6, b'', False, self.wire.chan, threading.Condition())
        req.feed(b'part', F_ERR)
        body = Input(req, None)
        self.assertEqual(body.read(4), b'part')
        with self.assertRaises(Aborted):
            body.read()

    def test_a_frame_wakes_its_own_request_only(self):
        # Requests share one condition, but each runner sleeps on its own:
        # another request's body frames do not wake it.
        waits = []

        class Counted(Request):
            __slots__ = ()

            def wait(self):
                waits.append(self.sid)
                super().wait()

        cond = self.req.cond
        one, two = (Counted(sid, b'', False, self.wire.chan, cond) for sid in (1, 2))
        for r in (one, two):
            self.addCleanup(r.feed, b'', F_EOF)   # no runner left blocked
        got = {}
        runners = [threading.Thread(target=lambda r=r: got.setdefault(r.sid, Input(r, 3).read()),
                                    daemon=True) for r in (one, two)]
        for t in runners:
            t.start()
        deadline = time.monotonic() + 5
        while not (1 in waits and 2 in waits) and time.monotonic() < deadline:
            time.sleep(0.001)
        for _ in range(20):
            one.feed(b'', 0)   # an empty frame wakes the runner of one, in vain
            time.sleep(0.001)
        one.feed(b'abc', F_EOF)
        runners[0].join(5)
        self.assertEqual(got.get(1), b'abc')
        self.assertEqual(waits.count(2), 1, waits)
        self.assertTrue(runners[1].is_alive())
        two.feed(b'xyz', F_EOF)
        runners[1].join(5)
        self.assertEqual(got.get(2), b'xyz')

    def test_send_window(self):
        self.assertEqual(self.req.reserve(SEND_WINDOW + 1), SEND_WINDOW)
        self.later(self.req.credit, 10)
        start = time.monotonic()
        self.assertEqual(self.req.reserve(100), 10)
        self.assertGreater(time.monotonic() - start, 0.03)
        self.later(self.req.abort)
        with self.assertRaises(Aborted):
            self.req.reserve(1)


class ErrorsTest(unittest.TestCase):

    def test_lines_are_logged(self):
        wire = Wire()
        self.addCleanup(wire.close)
        errors = Errors(wire.chan, 3)
        errors.write('one')
        self.assertEqual(wire.received(), [])
        errors.write(' two\nthree\nfo')
        errors.writelines(['ur', '!'])
        self.assertEqual(wire.received(1), [(T_LOG, L_ERROR, 3, b'one two\nthree')])
        errors.flush()
        self.assertEqual(wire.received(1), [(T_LOG, L_ERROR, 3, b'four!')])
        errors.flush()
        self.assertEqual(wire.received(), [])
        with self.assertRaisesRegex(TypeError, 'must be str, not bytes'):
            errors.write(b'x\n')

    def test_long_text_goes_in_pieces(self):
        wire = Wire()
        self.addCleanup(wire.close)
        errors = Errors(wire.chan, 3)
        # At the last newline within LOG_MAX bytes; without one, between
        # two characters (each \u00e9 is two bytes, the x shifts them).
        lines = 'short\n' + 'a' * (LOG_MAX - 10) + '\n' + 'x' + '\u00e9' * LOG_MAX
        errors.write(lines + '\n')
        got = [p for _, _, _, p in wire.received(4)]
        self.assertEqual(got[0], b'short\n' + b'a' * (LOG_MAX - 10))
        self.assertEqual([len(p) for p in got[1:]], [LOG_MAX - 1, LOG_MAX, 2])
        self.assertEqual(b''.join(got[1:]).decode('utf-8'), 'x' + '\u00e9' * LOG_MAX)
        self.assertEqual(wire.received(), [])


if __name__ == '__main__':
    unittest.main()
