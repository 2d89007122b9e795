"""environ: the keys wsgi and mod_wsgi 4.9 add, and mod_wsgi's counters."""

import threading
import time
import unittest

from _wsgifcgi.environ import MOD_WSGI_VERSION, Counters, static_keys
from _wsgifcgi.response import FileWrapper


class EnvironTest(unittest.TestCase):

    def test_static_keys(self):
        keys = static_keys({'threads': 1})
        self.assertEqual(keys, {
            'wsgi.version': (1, 0), 'wsgi.multithread': False, 'wsgi.multiprocess': False,
            'wsgi.run_once': False, 'wsgi.input_terminated': True, 'wsgi.file_wrapper': FileWrapper,
            'mod_wsgi.version': (4, 9, 4), 'mod_wsgi.ignore_activity': '0',
            'mod_wsgi.enable_sendfile': '0'})
        keys = static_keys({'threads': 4, 'multiprocess': True, 'run_once': True})
        self.assertEqual((keys['wsgi.multithread'], keys['wsgi.multiprocess'], keys['wsgi.run_once']),
                         (True, True, True))
        self.assertEqual(MOD_WSGI_VERSION, (4, 9, 4))

    def test_counters(self):
        counters = Counters()
        before = int(time.time() * 1000000)
        seen = []

        def request(environ):
            counters.begin(environ)
            seen.append(environ)
            counters.end()
        request({})
        request({})
        other = threading.Thread(target=request, args=({},))
        other.start()
        other.join()
        request({})
        self.assertEqual([(e['mod_wsgi.thread_id'], e['mod_wsgi.thread_requests'],
                           e['mod_wsgi.total_requests']) for e in seen],
                         [(1, 0, 0), (1, 1, 1), (2, 0, 2), (1, 2, 3)])
        for e in seen:
            self.assertIsInstance(e['mod_wsgi.script_start'], str)
            self.assertTrue(before <= int(e['mod_wsgi.script_start']) <= time.time() * 1000000)


if __name__ == '__main__':
    unittest.main()
