"""response: header checks, start_response, and the frames of whole and
streamed responses."""

import io
import sys
import threading
import unittest

from _wsgifcgi.frames import (HEAD_MAX, L_ERROR, L_WARN, MAX_DATA, OUT_ABORTED, OUT_APP_ERROR,
                              OUT_OK, OUT_TRUNCATED, T_DATA, T_END, T_HEADERS, T_LOG, T_RESPONSE,
                              U32, WHOLE_MAX)
from _wsgifcgi.request import Aborted, Request
from _wsgifcgi.response import FileWrapper, Response, check_status, encode_headers

from .wire import Wire


class HeadersTest(unittest.TestCase):

    def test_valid(self):
        self.assertEqual(encode_headers('200 OK', []), (b'200 OK', None))
        self.assertEqual(
            encode_headers('404 Not Found', [('Content-Type', 'text/plain'),
                                             ('Content-Length', ' 12 '), ('X-Name', 'caf\xe9')]),
            (b'404 Not Found\0Content-Type\0text/plain\0Content-Length\0 12 \0X-Name\0caf\xe9', 12))
        # Checked once, then known: the same answer again.
        for _ in range(2):
            self.assertEqual(encode_headers('200 OK', [('content-length', '0')])[1], 0)
        # A known header, or a whole list of them known with its status, is
        # still refused in any other shape than a tuple of two str.
        class Pair(tuple):
            pass

        class Text(str):
            pass
        self.assertEqual(encode_headers('200 OK', [('Content-Type', 'text/plain')]),
                         (b'200 OK\0Content-Type\0text/plain', None))
        with self.assertRaisesRegex(TypeError, 'unicode object'):
            encode_headers(Text('200 OK'), [('Content-Type', 'text/plain')])
        for item in (['Content-Type', 'text/plain'], Pair(('Content-Type', 'text/plain'))):
            with self.assertRaisesRegex(TypeError, 'tuple values expected'):
                encode_headers('200 OK', [item])
        for item in (('Content-Type', Text('text/plain')), (Text('Content-Type'), 'text/plain')):
            with self.assertRaisesRegex(TypeError, 'value of type Text'):
                encode_headers('200 OK', [item])

    def test_invalid(self):
        for status, headers, error, text in [
                (b'200 OK', [], TypeError, 'unicode object'),
                ('200', [], ValueError, 'NNN reason'),
                ('200OK', [], ValueError, 'NNN reason'),
                ('OK 200', [], ValueError, 'NNN reason'),
                ('\u0662\u0660\u0660 OK', [], ValueError, 'NNN reason'),
                ('099 Low', [], ValueError, 'NNN reason'),  # no status below 100
                ('200 OK', [('X', 'v' * HEAD_MAX)], ValueError, 'larger than'),
                ('200 OK\r\nX: y', [], ValueError, 'control character'),
                ('200 OK', (('A', 'b'),), TypeError, 'must be a list'),
                ('200 OK', [['A', 'b']], TypeError, 'tuple values expected'),
                ('200 OK', [('A', 'b', 'c')], TypeError, 'tuple values expected'),
                ('200 OK', [('A', 1)], TypeError, 'value of type int'),
                ('200 OK', [(b'A', 'b')], TypeError, 'value of type bytes'),
                ('200 OK', [('Bad Name', 'x')], ValueError, 'invalid response header name'),
                ('200 OK', [('', 'x')], ValueError, 'invalid response header name'),
                ('200 OK', [('Transfer-Encoding', 'chunked')], ValueError, 'hop-by-hop'),
                ('200 OK', [('Connection', 'close')], ValueError, 'hop-by-hop'),
                ('200 OK', [('X', 'a\nb')], ValueError, 'embedded newline'),
                ('200 OK', [('X', 'a\0')], ValueError, 'embedded newline'),
                ('200 OK', [('Content-Length', 'ten')], ValueError, 'invalid Content-Length'),
                ('200 OK', [('Content-Length', '-1')], ValueError, 'invalid Content-Length'),
        ]:
            with self.subTest(status=status, headers=headers):
                with self.assertRaisesRegex(error, text):
                    encode_headers(status, headers)

    def test_status_checked_once(self):
        check_status('299 Fine')
        check_status('299 Fine')
        with self.assertRaises(ValueError):
            check_status('2999')


class ResponseTest(unittest.TestCase):

    def setUp(self):
        self.wire = Wire()
        self.addCleanup(self.wire.close)

    def respond(self, app, method='GET', window=None):
        """Runs app for a request with stream id 1; the outcome."""
        self.req = Request(1, b'', True, self.wire.chan, threading.Condition())
        if window is not None:
            self.req.window = window
        resp = Response(self.req, self.wire.chan, {'REQUEST_METHOD': method,
                                                   'SCRIPT_FILENAME': '/app.wsgi'})
        outcome = resp.run(app, '/app.wsgi')
        resp.end(outcome)
        return outcome

    def frames(self):
        """What the worker sent, ending with an END or a RESPONSE."""
        got = []
        while not got or got[-1][0] not in (T_END, T_RESPONSE):
            got += self.wire.received(1)
        got += self.wire.received()
        return got

    @staticmethod
    def whole(frame):
        """A RESPONSE frame's outcome, header payload and body."""
        typ, outcome, sid, payload = frame
        n = U32.unpack_from(payload)[0]
        return outcome, payload[4:4 + n], payload[4 + n:]

    def test_whole_response_is_one_frame(self):
        def app(environ, start_response):
            start_response('200 OK', [('Content-Type', 'text/plain')])
            return [b'Hello']
        self.assertEqual(self.respond(app), OUT_OK)
        got = self.frames()
        self.assertEqual([f[0] for f in got], [T_RESPONSE])
        self.assertEqual(self.whole(got[0]), (OUT_OK, b'200 OK\0Content-Type\0text/plain', b'Hello'))

    def test_declared_length_that_fits_is_whole(self):
        def app(environ, start_response):
            start_response('200 OK', [('Content-Length', '6')])
            return iter([b'ab', b'', b'cdef'])
        self.respond(app)
        got = self.frames()
        self.assertEqual(len(got), 1)
        self.assertEqual(self.whole(got[0])[2], b'abcdef')

        def generator(environ, start_response):
            # start_response runs at the first block: too late to hold it.
            start_response('200 OK', [('Content-Length', '6')])
            yield b'abcdef'
        self.respond(generator)
        self.assertEqual([f[0] for f in self.frames()], [T_HEADERS, T_DATA, T_END])

    def test_streamed_response(self):
        big = b'z' * (MAX_DATA + 10)

        def app(environ, start_response):
            write = start_response('200 OK', [])
            write(b'w')
            yield b'a'
            yield big
        self.respond(app)
        got = self.frames()
        self.assertEqual([(f[0], len(f[3])) for f in got],
                         [(T_HEADERS, 6), (T_DATA, 1), (T_DATA, 1), (T_DATA, MAX_DATA),
                          (T_DATA, 10), (T_END, 0)])
        self.assertEqual(got[-1][1], OUT_OK)

    def test_large_body_is_streamed(self):
        body = b'b' * (WHOLE_MAX + 1)
        self.respond(lambda e, sr: sr('200 OK', [('Content-Length', str(len(body)))]) and [body])
        got = self.frames()
        self.assertEqual([f[0] for f in got], [T_HEADERS, T_DATA, T_END])
        self.assertEqual(got[1][3], body)

    def test_head_sends_no_body(self):
        def app(environ, start_response):
            start_response('200 OK', [('Content-Length', '4')])
            return [b'body']
        self.respond(app, 'HEAD')
        self.assertEqual(self.whole(self.frames()[0]), (OUT_OK, b'200 OK\0Content-Length\x004', b''))

        def streamed(environ, start_response):
            start_response('200 OK', [])
            yield b'body'
        self.respond(streamed, 'HEAD')
        self.assertEqual([f[0] for f in self.frames()], [T_HEADERS, T_END])

    def test_content_length_mismatch(self):
        def long(environ, start_response):
            start_response('200 OK', [('Content-Length', '3')])
            return [b'ab', b'cdef']
        self.assertEqual(self.respond(long), OUT_OK)
        got = self.frames()
        self.assertEqual(got[0][:2], (T_LOG, L_WARN))
        self.assertIn(b'3 bytes beyond Content-Length dropped', got[0][3])
        self.assertEqual(self.whole(got[1])[2], b'abc')

        def short(environ, start_response):
            start_response('200 OK', [('Content-Length', '10')])
            return [b'ab', b'cd']
        self.assertEqual(self.respond(short), OUT_TRUNCATED)
        got = self.frames()
        self.assertIn(b'ended 6 bytes short', got[0][3])
        self.assertEqual(self.whole(got[1]), (OUT_TRUNCATED, b'200 OK\0Content-Length\x0010', b'abcd'))

    def test_exception_before_the_headers(self):
        closed = []

        class Result(list):
            def close(self):
                closed.append(True)

        def app(environ, start_response):
            start_response('200 OK', [])
            return Result([1])
        self.assertEqual(self.respond(app), OUT_APP_ERROR)
        got = self.frames()
        self.assertEqual([(f[0], f[1]) for f in got], [(T_LOG, L_ERROR), (T_END, OUT_APP_ERROR)])
        self.assertIn(b"Exception occurred processing WSGI script '/app.wsgi'", got[0][3])
        self.assertIn(b'TypeError: sequence of byte string values expected', got[0][3])
        self.assertEqual(closed, [True])

    def test_exception_after_the_headers(self):
        def app(environ, start_response):
            start_response('200 OK', [])
            yield b'a'
            raise KeyError('boom')
        self.assertEqual(self.respond(app), OUT_TRUNCATED)
        got = self.frames()
        self.assertEqual([f[0] for f in got], [T_HEADERS, T_DATA, T_LOG, T_END])
        self.assertIn(b"KeyError: 'boom'", got[2][3])

    def test_close_that_fails(self):
        class Result(list):
            def close(self):
                raise ValueError('close failed')
        self.assertEqual(self.respond(lambda e, sr: sr('200 OK', []) and Result([b'x'])), OUT_TRUNCATED)
        got = self.frames()
        self.assertEqual([f[0] for f in got], [T_HEADERS, T_DATA, T_LOG, T_END])
        self.assertIn(b'ValueError: close failed', got[2][3])

        # A whole response, held until its end, is not sent at all.
        self.assertEqual(self.respond(lambda e, sr: sr('200 OK', [('Content-Length', '1')]) and
                                      Result([b'x'])), OUT_APP_ERROR)
        self.assertEqual([f[:2] for f in self.frames()], [(T_LOG, L_ERROR), (T_END, OUT_APP_ERROR)])

    def test_start_response_rules(self):
        def twice(environ, start_response):
            start_response('200 OK', [])
            start_response('500 Oops', [])
        self.respond(twice)
        self.assertIn(b'called a second time without exc_info', self.frames()[0][3])

        def replaced(environ, start_response):
            start_response('200 OK', [])
            try:
                raise ValueError('x')
            except ValueError:
                start_response('500 Oops', [], sys.exc_info())
            return [b'oops']
        self.respond(replaced)
        self.assertEqual(self.whole(self.frames()[0]), (OUT_OK, b'500 Oops', b'oops'))

        def too_late(environ, start_response):
            start_response('200 OK', [])
            yield b'sent'
            try:
                raise ValueError('too late')
            except ValueError:
                start_response('500 Oops', [], sys.exc_info())
        self.assertEqual(self.respond(too_late), OUT_TRUNCATED)
        self.assertIn(b'ValueError: too late', self.frames()[-2][3])

        self.assertEqual(self.respond(lambda e, sr: [b'never started']), OUT_APP_ERROR)
        self.assertIn(b'response has not been started', self.frames()[0][3])

    def test_file_wrapper_stops_at_the_content_length(self):
        reads = []

        class File(io.BytesIO):
            def read(self, n):
                reads.append(n)
                return super().read(n)
        f = File(b'0123456789' * 3)

        def app(environ, start_response):
            start_response('200 OK', [('Content-Length', '25')])
            return environ.get('wsgi.file_wrapper', FileWrapper)(f, 10)
        self.respond(app)
        got = self.frames()
        self.assertEqual(b''.join(p for typ, _, _, p in got if typ == T_DATA), (b'0123456789' * 3)[:25])
        self.assertEqual(reads, [10, 10, 5])
        self.assertTrue(f.closed)

    def test_send_window(self):
        credit = threading.Timer(0.05, lambda: self.req.credit(100))
        self.addCleanup(credit.join)

        def app(environ, start_response):
            write = start_response('200 OK', [])
            credit.start()
            write(b'x' * 25)
            return []
        self.respond(app, window=10)
        got = self.frames()
        self.assertEqual([(f[0], len(f[3])) for f in got], [(T_HEADERS, 6), (T_DATA, 10), (T_DATA, 15),
                                                            (T_END, 0)])

    def test_aborted_client(self):
        def app(environ, start_response):
            write = start_response('200 OK', [])
            self.req.abort()
            write(b'x')
        self.assertEqual(self.respond(app), OUT_ABORTED)
        # Nothing logged, and the headers not sent.
        self.assertEqual([f[:2] for f in self.frames()], [(T_END, OUT_ABORTED)])

        def streaming(environ, start_response):
            write = start_response('200 OK', [])
            write(b'x')
            self.req.abort()
            try:
                write(b'y')
            except OSError as e:   # what an application may catch
                self.assertIsInstance(e, Aborted)
                raise
        self.assertEqual(self.respond(streaming), OUT_ABORTED)
        self.assertEqual([f[:2] for f in self.frames()], [(T_HEADERS, 0), (T_DATA, 0), (T_END, OUT_ABORTED)])


if __name__ == '__main__':
    unittest.main()
