"""boot: modules imported from sources in memory, with tracebacks that show
their lines."""

import linecache
import sys
import traceback
import unittest

from _wsgifcgi.boot import EmbeddedModules

PACKAGE = '_wsgifcgi_boot_test'
SOURCES = {
    PACKAGE: ('pkg/__init__.py', 'from . import inner\n'),
    PACKAGE + '.inner': ('pkg/inner.py', 'import sys\n\n\ndef fail():\n    raise ValueError("from inner")\n'),
}


class BootTest(unittest.TestCase):

    def setUp(self):
        fields = []
        for name, (filename, source) in SOURCES.items():
            fields += [name.encode(), filename.encode(), source.encode()]
        self.modules = EmbeddedModules(fields)
        sys.meta_path.insert(0, self.modules)
        self.addCleanup(sys.meta_path.remove, self.modules)
        for name in SOURCES:
            self.addCleanup(sys.modules.pop, name, None)
        for filename, _ in SOURCES.values():
            self.addCleanup(linecache.cache.pop, filename, None)

    def test_imported_as_real_modules(self):
        __import__(PACKAGE)
        pkg, inner = sys.modules[PACKAGE], sys.modules[PACKAGE + '.inner']
        self.assertIs(pkg.inner, inner)
        self.assertEqual(pkg.__path__, [])
        self.assertEqual(inner.__spec__.origin, 'pkg/inner.py')
        self.assertIs(inner.__loader__, self.modules)
        self.assertFalse(hasattr(inner, '__file__'))   # no file to watch or open
        self.assertFalse(hasattr(inner, '__path__'))
        self.assertIsNone(self.modules.find_spec('_wsgifcgi_boot_test_other'))

    def test_tracebacks_show_the_lines(self):
        __import__(PACKAGE)
        for clear in (False, True):
            if clear:
                linecache.clearcache()   # the loader serves the source again
            try:
                sys.modules[PACKAGE + '.inner'].fail()
            except ValueError:
                frame = traceback.extract_tb(sys.exc_info()[2])[-1]
            self.assertEqual((frame.filename, frame.lineno, frame.name, frame.line),
                             ('pkg/inner.py', 5, 'fail', 'raise ValueError("from inner")'))


if __name__ == '__main__':
    unittest.main()
