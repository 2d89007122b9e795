# Clears linecache, then formats a traceback through the worker's code.
import linecache
import sys
import traceback


def application(environ, start_response):
    linecache.clearcache()
    try:
        start_response('200 OK', [('Bad Name', 'x')])
    except ValueError:
        frame = traceback.extract_tb(sys.exc_info()[2])[-1]
    body = 'line: %s\nmain file: %s' % (frame.line, getattr(sys.modules['__main__'], '__file__', None))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body.encode()]
