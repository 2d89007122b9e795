# Used as an import script: module code records how and where it ran.
import builtins
import threading

builtins._preload_loads = getattr(builtins, '_preload_loads', 0) + 1
LOADED_IN = threading.current_thread().name


def application(environ, start_response):
    body = ('loads=%d thread=%s' % (builtins._preload_loads, LOADED_IN)).encode()
    start_response('200 OK', [])
    return [body]
