"""The keys wsgi and mod_wsgi 4.9 add to a request's environ (main.Worker.handle
decodes the rest from the REQUEST frame)."""

import threading
import time

from .response import FileWrapper

# The mod_wsgi release whose behaviour this follows (the spec's parity
# facts), a tuple as mod_wsgi gives it.
MOD_WSGI_VERSION = (4, 9, 4)


def static_keys(cfg):
    """The keys every request's environ gets from the process's config."""
    return {
        'wsgi.version': (1, 0),
        'wsgi.multithread': max(1, int(cfg.get('threads', 1))) > 1,
        'wsgi.multiprocess': bool(cfg.get('multiprocess')),
        'wsgi.run_once': bool(cfg.get('run_once')),
        'wsgi.input_terminated': True,
        'wsgi.file_wrapper': FileWrapper,
        'mod_wsgi.version': MOD_WSGI_VERSION,
        # No WSGIIgnoreActivity / WSGIEnableSendfile here: mod_wsgi's '0'.
        'mod_wsgi.ignore_activity': '0',
        'mod_wsgi.enable_sendfile': '0',
    }


class Counters:
    """The per-process and per-thread counts of mod_wsgi 4.9's environ:
    mod_wsgi.thread_id (a number per request thread, in the order they first
    ran a request; the main thread has 0), mod_wsgi.thread_requests (requests
    that thread ran before this one) and mod_wsgi.total_requests (requests
    the process completed before this one started), all ints;
    mod_wsgi.script_start, the time the application is called, in µs since
    the epoch as a string. (mod_wsgi.daemon_connects is set with
    mod_wsgi.daemon_start, by main.Worker.handle.)"""

    def __init__(self):
        self.lock = threading.Lock()
        self.threads = 0
        self.total = 0
        self.local = threading.local()

    def begin(self, environ):
        try:
            st = self.local.st      # [thread id, requests it ran]
        except AttributeError:
            with self.lock:
                self.threads += 1
                st = self.local.st = [self.threads, 0]
        environ['mod_wsgi.thread_id'] = st[0]
        environ['mod_wsgi.thread_requests'] = st[1]
        environ['mod_wsgi.total_requests'] = self.total
        environ['mod_wsgi.script_start'] = str(time.time_ns() // 1000)
        st[1] += 1

    def end(self):
        # acquire/release: half the cost of the lock's context manager.
        self.lock.acquire()
        self.total += 1
        self.lock.release()
