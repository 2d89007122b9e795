"""loader: WSGI scripts loaded, cached and reloaded as mod_wsgi does."""

import hashlib
import json
import os
import sys
import tempfile
import unittest

from _wsgifcgi.loader import Loader, NotFound, ReloadProcess, auth_app


class LoaderTest(unittest.TestCase):

    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.path = os.path.join(tmp.name, 'app.wsgi')
        self.name = '_mod_wsgi_' + hashlib.md5(self.path.encode()).hexdigest()
        self.addCleanup(sys.modules.pop, self.name, None)
        self.loader = Loader()

    def script(self, source, mtime):
        with open(self.path, 'w') as f:
            f.write(source)
        os.utime(self.path, ns=(mtime, mtime))

    def test_load_and_cache(self):
        self.script('version = 1\n', 10**18)
        module = self.loader.load(self.path, True, 'module')
        self.assertEqual((module.__name__, module.__file__, module.version), (self.name, self.path, 1))
        self.assertIs(sys.modules[self.name], module)
        self.assertIs(self.loader.load(self.path, True, 'module', 10**18), module)

    def test_reload_when_the_file_changes(self):
        self.script('version = 1\n', 10**18)
        first = self.loader.load(self.path, True, 'module')
        self.script('version = 2\n', 10**18 + 1)
        # Not reloading, or told the mtime it had: the loaded module.
        self.assertIs(self.loader.load(self.path, False, 'module'), first)
        self.assertIs(self.loader.load(self.path, True, 'module', 10**18), first)
        with self.assertRaises(ReloadProcess):
            self.loader.load(self.path, True, 'process')
        second = self.loader.load(self.path, True, 'module')
        self.assertEqual(second.version, 2)
        self.assertIs(sys.modules[self.name], second)
        self.assertIs(self.loader.load(self.path, True, 'module', 10**18 + 1), second)

    def test_missing_and_broken_scripts(self):
        with self.assertRaises(NotFound):
            self.loader.load(self.path, True, 'module')
        self.script('x = 1\nraise KeyError("broken")\n', 10**18)
        try:
            self.loader.load(self.path, True, 'module')
            self.fail('no exception')
        except KeyError as e:
            tb = e.__traceback__
        while tb.tb_next:
            tb = tb.tb_next
        self.assertEqual((tb.tb_frame.f_code.co_filename, tb.tb_lineno), (self.path, 2))
        self.assertNotIn(self.name, sys.modules)
        self.script('x = 1\n', 10**18)
        self.assertEqual(self.loader.load(self.path, True, 'module').x, 1)

    def test_auth_app(self):
        self.assertIsNone(auth_app(None, []))
        app = auth_app(lambda environ, user, password: [environ['who'], user, password], ['u', 'p'])
        started = []
        body = app({'who': 'me'}, lambda status, headers: started.append((status, headers)))
        self.assertEqual(json.loads(body[0]), ['me', 'u', 'p'])
        self.assertEqual(started, [('200 OK', [('Content-Type', 'application/json')])])
        with self.assertRaises(TypeError):   # an error, never an allow
            auth_app(lambda environ: object(), [])({}, lambda s, h: None)


if __name__ == '__main__':
    unittest.main()
