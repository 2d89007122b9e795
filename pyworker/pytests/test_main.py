"""main: a Worker serving requests sent through real pipes, inline (one
thread) and with request threads: the environ it decodes, the outcomes of
scripts that cannot run, aborts, shutdown."""

import json
import os
import tempfile
import threading
import time
import unittest

from _wsgifcgi.frames import (F_EOF, F_NOBODY, L_ERROR, L_INFO, OUT_ABORTED, OUT_APP_ERROR,
                              OUT_CLOSED, OUT_NOT_FOUND, OUT_OK, OUT_RELOAD, T_ABORT, T_BODY,
                              T_END, T_LOG, T_REQUEST, T_RESPONSE, T_SHUTDOWN, U32, U64)
from _wsgifcgi.main import Worker

from .wire import Wire

# Answers the environ's keys, with the type of values JSON cannot carry,
# and the body it read.
ENVIRON_APP = '''
import json

def application(environ, start_response):
    body = environ['wsgi.input'].read()
    out = {k: v if isinstance(v, (str, int, bool)) else type(v).__name__
           for k, v in environ.items()}
    out['body'] = body.decode('latin-1')
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out).encode()]
'''


LATER = object()


class Serving:
    """The tests of both modes, on a Worker with self.threads threads."""

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = tmp.name
        self.wire = Wire()
        self.addCleanup(self.wire.close)
        self.worker = Worker({'threads': self.threads}, self.wire.frames, self.wire.chan)
        self.reader = threading.Thread(target=self.worker.read_frames, daemon=True)
        self.reader.start()
        self.addCleanup(self.reader.join, 5)
        self.addCleanup(self.wire.close_to_worker)
        self.environ_app = self.script('environ.wsgi', ENVIRON_APP)

    def script(self, name, source):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(source)
        return path

    @staticmethod
    def request(sid, environ, mtime=0, body=None):
        """A REQUEST frame and its body (None: it has none; LATER: the test
        sends it)."""
        blob = U64.pack(mtime) + '\0'.join(x for kv in environ.items() for x in kv).encode('latin-1')
        out = Wire.frame(T_REQUEST, sid, blob, F_NOBODY if body is None else 0)
        if body is not None and body is not LATER:
            out += Wire.frame(T_BODY, sid, body, F_EOF)
        return out

    def ends(self, count):
        """The frames until count requests ended, as {sid: [frames]}, and
        the order they ended in."""
        by_sid, order = {}, []
        while len(order) < count:
            for f in self.wire.received(1):
                by_sid.setdefault(f[2], []).append(f)
                if f[0] in (T_END, T_RESPONSE):
                    order.append(f[2])
        return by_sid, order

    def environ_of(self, frames):
        typ, outcome, sid, payload = frames[-1]
        self.assertEqual((typ, outcome), (T_RESPONSE, OUT_OK), frames)
        n = U32.unpack_from(payload)[0]
        return json.loads(payload[4 + n:])

    def test_environ(self):
        self.wire.write(
            self.request(1, {'SCRIPT_FILENAME': self.environ_app, 'REQUEST_METHOD': 'POST',
                             'HTTP_X_NAME': 'caf\xe9', 'CONTENT_LENGTH': '3', 'EMPTY': ''},
                         body=b'abcdef'))
        first = self.environ_of(self.ends(1)[0][1])
        self.wire.write(
            self.request(2, {'SCRIPT_FILENAME': self.environ_app, 'wsgi.url_scheme': 'https',
                             'mod_wsgi.queue_start': '1', 'CONTENT_LENGTH': 'x'}, body=b'all of it'))
        second = self.environ_of(self.ends(1)[0][2])
        for key, want in [('REQUEST_METHOD', 'POST'), ('HTTP_X_NAME', 'caf\xe9'), ('EMPTY', ''),
                          ('body', 'abc'), ('wsgi.url_scheme', 'http'), ('wsgi.input', 'Input'),
                          ('wsgi.errors', 'Errors'), ('wsgi.version', 'tuple'),
                          ('wsgi.multithread', self.threads > 1), ('wsgi.input_terminated', True),
                          ('wsgi.file_wrapper', 'type'), ('mod_wsgi.version', 'tuple'),
                          ('mod_wsgi.thread_requests', 0), ('mod_wsgi.total_requests', 0)]:
            self.assertEqual(first.get(key), want, key)
        self.assertNotIn('mod_wsgi.daemon_start', first)
        self.assertNotIn('mod_wsgi.daemon_connects', first)
        self.assertEqual((second['wsgi.url_scheme'], second['body'], second['mod_wsgi.total_requests'],
                          second['mod_wsgi.daemon_connects']), ('https', 'all of it', 1, '1'))
        self.assertGreaterEqual(int(second['mod_wsgi.script_start']), int(second['mod_wsgi.daemon_start']))

    def test_scripts_that_cannot_run(self):
        broken = self.script('broken.wsgi', 'import no_such_module_here\n')
        empty = self.script('empty.wsgi', 'x = 1\n')
        named = self.script('named.wsgi', ENVIRON_APP.replace('def application', 'def app'))
        self.wire.write(
            self.request(1, {'SCRIPT_FILENAME': os.path.join(self.dir, 'missing.wsgi')}) +
            self.request(2, {'SCRIPT_FILENAME': broken}) +
            self.request(3, {'SCRIPT_FILENAME': empty}) +
            self.request(4, {'SCRIPT_FILENAME': named}) +
            self.request(5, {'SCRIPT_FILENAME': named, 'mod_wsgi.callable_object': 'app'}))
        frames, order = self.ends(5)
        self.assertEqual(sorted(order), [1, 2, 3, 4, 5])
        for sid, outcome, text in [
                (1, OUT_NOT_FOUND, b'Target WSGI script not found or unable to stat'),
                (2, OUT_APP_ERROR, b"cannot be loaded as Python module"),
                (3, OUT_APP_ERROR, b"does not contain WSGI application 'application'"),
                (4, OUT_APP_ERROR, b"does not contain WSGI application 'application'")]:
            (log_typ, level, _, log), (end, got, _, _) = frames[sid]
            self.assertEqual((log_typ, level, end, got), (T_LOG, L_ERROR, T_END, outcome), sid)
            self.assertIn(text, log)
        self.assertIn(b'ModuleNotFoundError', frames[2][0][3])
        self.environ_of(frames[5])

    def test_reload_mechanism_process(self):
        app = self.script('app.wsgi', ENVIRON_APP)
        env = {'SCRIPT_FILENAME': app, 'mod_wsgi.reload_mechanism': 'process'}
        self.wire.write(self.request(1, env, mtime=1))
        self.environ_of(self.ends(1)[0][1])
        self.wire.write(self.request(2, env, mtime=2))
        frames, _ = self.ends(1)
        self.assertEqual([f[:2] for f in frames[2]], [(T_LOG, L_INFO), (T_END, OUT_RELOAD)])
        self.assertIn(b'Force restart of process', frames[2][0][3])

    def test_auth_function(self):
        auth = self.script('auth.wsgi', 'def check_password(environ, user, password):\n'
                                        '    return user == "u" and password == "p"\n')
        self.wire.write(self.request(1, {'SCRIPT_FILENAME': auth, 'mod_wsgi.auth_function': 'check_password',
                                         'mod_wsgi.auth_args': '["u", "p"]'}))
        typ, outcome, _, payload = self.ends(1)[0][1][-1]
        self.assertEqual((typ, outcome), (T_RESPONSE, OUT_OK))
        self.assertTrue(payload.endswith(b'\0application/json' + b'true'))

    def test_shutdown(self):
        env = {'SCRIPT_FILENAME': self.environ_app}
        self.wire.write(self.request(1, env, body=LATER))
        self.wire.write(Wire.frame(T_SHUTDOWN, 0) + self.request(2, env))
        frames, order = self.ends(1)
        self.assertEqual(frames[2], [(T_END, OUT_CLOSED, 2, b'')])
        stopped = threading.Thread(target=self.worker.wait_stopped)
        stopped.start()
        stopped.join(0.1)
        self.assertTrue(stopped.is_alive())   # request 1 is still in flight
        self.wire.send(T_BODY, 1, b'', F_EOF)
        self.environ_of(self.ends(1)[0][1])
        stopped.join(5)
        self.assertFalse(stopped.is_alive())


class InlineWorkerTest(Serving, unittest.TestCase):
    """One thread: the reader runs each request."""

    threads = 1

    def test_abort_of_a_request_waiting_in_the_pipe(self):
        env = {'SCRIPT_FILENAME': self.environ_app}
        # Request 1 waits for its body: request 2 and its ABORT arrive meanwhile.
        self.wire.write(self.request(1, env, body=LATER))
        self.wire.write(self.request(2, env) + Wire.frame(T_ABORT, 2) +
                        Wire.frame(T_BODY, 1, b'late', F_EOF))
        self.wire.write(self.request(3, env))
        frames, order = self.ends(3)
        self.assertEqual(frames[2], [(T_END, OUT_ABORTED, 2, b'')])
        self.assertEqual(self.environ_of(frames[1])['body'], 'late')
        self.assertEqual(self.environ_of(frames[3])['mod_wsgi.total_requests'], 1)   # 2 never ran


# Sleeps QUERY_STRING seconds (if any) and answers the id of its thread.
THREAD_APP = '''
import threading
import time

def application(environ, start_response):
    if environ.get('QUERY_STRING'):
        time.sleep(float(environ['QUERY_STRING']))
    start_response('200 OK', [])
    return [str(threading.get_ident()).encode()]
'''


# Busy for QUERY_STRING seconds, letting go of the GIL now and then as a
# database call does.
BUSY_APP = '''
import time

def application(environ, start_response):
    end = time.perf_counter() + float(environ['QUERY_STRING'])
    while time.perf_counter() < end:
        time.sleep(0)
    start_response('200 OK', [])
    return [b'done']
'''


class ThreadedWorkerTest(Serving, unittest.TestCase):
    """Request threads: a request overtakes one that waits."""

    threads = 2

    def thread_ids(self, count, sleep=''):
        """Sends count requests at once to THREAD_APP; the ids of the
        threads that ran them, and how long they took."""
        env = {'SCRIPT_FILENAME': self.script('thread.wsgi', THREAD_APP), 'QUERY_STRING': sleep}
        began = time.monotonic()
        self.wire.write(b''.join(self.request(sid, env) for sid in range(1, count + 1)))
        frames, _ = self.ends(count)
        took = time.monotonic() - began
        ids = []
        for sid in frames:
            typ, outcome, _, payload = frames[sid][-1]
            self.assertEqual((typ, outcome), (T_RESPONSE, OUT_OK), frames[sid])
            ids.append(payload[4 + U32.unpack_from(payload)[0]:])
        return ids, took

    def test_requests_that_block_take_threads_of_their_own(self):
        ids, took = self.thread_ids(2, '0.5')
        self.assertEqual(len(set(ids)), 2)
        self.assertLess(took, 0.9)   # not one after the other

    def test_a_busy_worker_runs_quick_requests_in_one_thread(self):
        ids, _ = self.thread_ids(40)
        most = max(ids.count(i) for i in set(ids))
        self.assertGreaterEqual(most, 30, 'threads used: %s' % {i: ids.count(i) for i in set(ids)})

    def test_requests_that_keep_coming_wake_no_thread(self):
        # A thread stays standing by between requests that keep coming, so
        # that starting each one needs no wake-up (cond.notify) of another.
        notified = []
        notify = self.worker.cond.notify

        def counting(n=1):
            notified.append(n)
            notify(n)
        self.worker.cond.notify = counting
        env = {'SCRIPT_FILENAME': self.environ_app}
        for sid in range(1, 101):
            self.wire.write(self.request(sid, env))
            self.ends(1)
            time.sleep(0.0005)   # the worker reads the pipe, idle, between them
        # A few may come when the machine stalls a thread past STANDBY; a
        # thread that went back to sleep at each pause made dozens.
        self.assertLessEqual(len(notified), 10, '%d wake-ups for 100 requests' % len(notified))

    def test_a_busy_worker_is_seldom_checked_on(self):
        # The thread standing by takes the GIL from the busy one each time
        # its wait ends: waits grow while requests move (100 requests of
        # 1 ms made 53 waits of 2 ms before they grew, 9 since).
        waits = []
        stand_by = self.worker.stand_by

        def counting():
            waits.append(self.worker.patience)
            return stand_by()
        self.worker.stand_by = counting
        env = {'SCRIPT_FILENAME': self.script('busy.wsgi', BUSY_APP), 'QUERY_STRING': '0.001'}
        self.wire.write(b''.join(self.request(sid, env) for sid in range(1, 101)))
        self.ends(100)
        self.assertLessEqual(len(waits), 25, 'waits: %s' % waits)
        # and one that blocks after them still takes a thread of its own soon
        ids, took = self.thread_ids(2, '0.5')
        self.assertEqual(len(set(ids)), 2)
        self.assertLess(took, 0.9)

    def test_every_thread_ends_with_the_pipe(self):
        # A thread standing by when the end came used to sleep on for good.
        ids, _ = self.thread_ids(2, '0.05')   # each of the two ran one
        threads = [t for t in threading.enumerate() if str(t.ident).encode() in ids]
        self.assertEqual(len(threads), 2)
        self.wire.close_to_worker()
        for t in threads:
            t.join(2)
        self.assertEqual([t.name for t in threads if t.is_alive()], [])

    def test_bodies_that_arrive_together(self):
        # Both threads wait for body frames; whichever reads hands the
        # frames to the other, and the reading passes between them.
        env = {'SCRIPT_FILENAME': self.environ_app}
        self.wire.write(self.request(1, env, body=LATER) + self.request(2, env, body=LATER))
        sent = {1: [], 2: []}
        for i in range(200):
            sid = 1 + i % 2
            chunk = (b'%d:%d,' % (sid, i)) * (1 + i % 7)
            sent[sid].append(chunk)
            self.wire.send(T_BODY, sid, chunk)
            if i % 25 == 0:
                time.sleep(0.002)   # let one drain what came while the other reads
        for sid in (1, 2):
            self.wire.send(T_BODY, sid, b'', F_EOF)
        frames, _ = self.ends(2)
        for sid in (1, 2):
            self.assertEqual(self.environ_of(frames[sid])['body'],
                             b''.join(sent[sid]).decode('latin-1'))

    def test_a_request_overtakes_one_that_waits(self):
        env = {'SCRIPT_FILENAME': self.environ_app}
        self.wire.write(self.request(1, env, body=LATER))
        self.wire.write(self.request(2, env))
        self.assertEqual(self.ends(1)[1], [2])
        self.wire.send(T_BODY, 1, b'', F_EOF)
        self.assertEqual(self.ends(1)[1], [1])


if __name__ == '__main__':
    unittest.main()
