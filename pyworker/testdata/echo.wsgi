# Echoes the request body, read in the way QUERY_STRING names.
import hashlib


def application(environ, start_response):
    inp = environ['wsgi.input']
    mode = environ.get('QUERY_STRING', '')
    if mode == 'readline':
        out = b'|'.join(iter(inp.readline, b''))
    elif mode == 'readline3':
        out = b'|'.join(iter(lambda: inp.readline(3), b''))
    elif mode == 'readlines':
        out = b'|'.join(inp.readlines())
    elif mode == 'readlines-hint':
        first = inp.readlines(5)
        out = b'|'.join(first) + b'#' + inp.read()
    elif mode == 'iter':
        out = b'|'.join(line for line in inp)
    elif mode == 'chunks':
        # Streams the body back as it comes: memory stays flat.
        start_response('200 OK', [('Content-Type', 'application/octet-stream')])
        return iter(lambda: inp.read(65536), b'')
    elif mode == 'sha256':
        h = hashlib.sha256()
        for block in iter(lambda: inp.read(100000), b''):
            h.update(block)
        out = h.hexdigest().encode()
    elif mode == 'none':
        out = inp.read(None)
    elif mode == 'read2':
        out = inp.read(2) + b'|' + inp.read()
    else:
        out = inp.read()
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', str(len(out)))])
    return [out]
