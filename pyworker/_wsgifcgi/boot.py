"""Imports the worker's modules from the sources the bridge embeds, and runs
the worker.

pyworker's bootstrap (the interpreter's -c) reads fd 5, which holds
"name\\0filename\\0source" for each module of this package, NUL-separated
(Python source has no NUL), this module's first; it runs this module's
source and calls start() with the fields. The modules are imported as real
modules under their own names; their code carries filename (the file's path
in the repository) with real line numbers. Each source is put into
linecache (an entry without mtime, which linecache.checkcache keeps) and
served again by the loader's get_source should an application clear that
cache. Nothing is written to disk, and the finder is on sys.meta_path
only while the worker's modules are imported.
"""

import linecache
import sys
from importlib.machinery import ModuleSpec


class EmbeddedModules:
    """Finder and loader of modules whose sources are in memory."""

    def __init__(self, fields):
        self.sources = {}   # module name -> (filename, source bytes)
        for i in range(0, len(fields) - 2, 3):
            filename, source = fields[i + 1].decode('utf-8'), fields[i + 2]
            self.sources[fields[i].decode('utf-8')] = (filename, source)
            text = source.decode('utf-8')
            linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)

    def find_spec(self, name, path=None, target=None):
        entry = self.sources.get(name)
        if entry is None:
            return None
        # No __file__: no file is there, for reloaders to watch or
        # tools to open.
        return ModuleSpec(name, self, origin=entry[0], is_package=self.is_package(name))

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        filename, source = self.sources[module.__name__]
        exec(compile(source, filename, 'exec', dont_inherit=True), module.__dict__)

    def is_package(self, name):
        return self.sources[name][0].endswith('/__init__.py')

    def get_source(self, name):
        return self.sources[name][1].decode('utf-8')


def start(fields):
    modules = EmbeddedModules(fields)
    sys.meta_path.insert(0, modules)
    try:
        from _wsgifcgi.main import main
    finally:
        sys.meta_path.remove(modules)
    main()
