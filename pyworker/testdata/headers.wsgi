# Bad start_response arguments chosen by QUERY_STRING.
CASES = {
    'crlf': ('200 OK', [('X-Bad', 'a\r\nSet-Cookie: evil=1')]),
    'lf': ('200 OK', [('X-Bad', 'a\nb')]),
    'nul': ('200 OK', [('X-Bad', 'a\0b')]),
    'hop': ('200 OK', [('Connection', 'close')]),
    'te': ('200 OK', [('Transfer-Encoding', 'chunked')]),
    'name': ('200 OK', [('Bad Name', 'x')]),
    'status': ('OK', []),
    'statuscrlf': ('200 OK\r\nX: y', []),
    'notlist': ('200 OK', (('A', 'b'),)),
    'bytes': ('200 OK', [(b'A', b'b')]),
    'unicode': ('200 OK', [('X-Snow', '\u2603')]),
    'good': ('201 Created', [('X-Ok', 'yes'), ('Location', '/x')]),
}


def application(environ, start_response):
    status, headers = CASES[environ['QUERY_STRING']]
    start_response(status, headers)
    return [b'body']
