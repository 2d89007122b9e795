# start_response exc_info rules, chosen by QUERY_STRING.
import sys


def application(environ, start_response):
    mode = environ['QUERY_STRING']
    if mode == 'replace':
        start_response('200 OK', [('Content-Type', 'text/plain')])
        try:
            raise KeyError('replaced')
        except KeyError:
            start_response('500 Internal Server Error', [('Content-Type', 'text/plain')], sys.exc_info())
        return [b'error page']
    if mode == 'after':
        write = start_response('200 OK', [('Content-Type', 'text/plain')])
        write(b'partial')
        try:
            raise KeyError('too-late')
        except KeyError:
            start_response('500 Internal Server Error', [], sys.exc_info())
        return [b'never']
    if mode == 'twice':
        start_response('200 OK', [])
        start_response('404 Not Found', [])
        return [b'never']
    if mode == 'none':
        return [b'no start_response']
    if mode == 'str':
        start_response('200 OK', [])
        return ['text, not bytes']
