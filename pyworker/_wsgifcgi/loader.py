"""The WSGI scripts: loaded as mod_wsgi loads them, reloaded when they
change, and the functions of auth scripts run as applications."""

import hashlib
import json
import os
import sys
import threading


class NotFound(Exception):
    pass


class ReloadProcess(Exception):
    pass


class Loader:
    """Loads WSGI scripts as mod_wsgi does: module '_mod_wsgi_' + md5 of the
    path, exec'ed from the file, cached, reloaded when the file changes."""

    def __init__(self):
        self.lock = threading.RLock()
        # Fully executed modules only: sys.modules holds a module while its
        # code still runs, and another thread must not take it then.
        self.loaded = {}
        self.names = {}   # script path -> module name

    def load(self, path, reloading, mechanism, mtime=0):
        """mtime: the file's modification time in ns as the bridge found it
        when it routed the request (0: unknown, stat it here)."""
        if not mtime:
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                raise NotFound(path) from None
        name = self.names.get(path)
        if name is None:
            name = '_mod_wsgi_' + hashlib.md5(path.encode('utf-8', 'surrogateescape')).hexdigest()
            self.names[path] = name
        module = self.loaded.get(name)
        if module is not None and (not reloading or module.__mtime__ == mtime):
            return module
        with self.lock:
            module = self.loaded.get(name)
            if module is not None:
                if not reloading or module.__mtime__ == mtime:
                    return module
                if mechanism == 'process':
                    raise ReloadProcess(path)
                del self.loaded[name]
                sys.modules.pop(name, None)
            module = self._exec(name, path, mtime)
            self.loaded[name] = module
            return module

    def _exec(self, name, path, mtime):
        with open(path, 'rb') as f:
            source = f.read()
        module = type(sys)(name)
        module.__file__ = path
        module.__mtime__ = mtime
        sys.modules[name] = module
        try:
            exec(compile(source, path, 'exec', dont_inherit=True), module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module


def auth_app(function, args):
    """Runs one function of an auth script (check_password, get_realm_hash,
    groups_for_user, allow_access) as a WSGI app answering its result in
    JSON. An exception, or a result JSON cannot carry, is an error: Go
    never takes it for an allow."""
    if function is None:
        return None

    def app(environ, start_response):
        body = json.dumps(function(environ, *args)).encode()
        start_response('200 OK', [('Content-Type', 'application/json')])
        return [body]
    return app
