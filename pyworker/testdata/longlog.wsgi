# Writes QUERY_STRING MiB and a byte to wsgi.errors without a newline.
def application(environ, start_response):
    n = int(environ['QUERY_STRING']) << 20
    environ['wsgi.errors'].write('e' * (n + 1))
    environ['wsgi.errors'].flush()
    start_response('200 OK', [])
    return [b'logged']
