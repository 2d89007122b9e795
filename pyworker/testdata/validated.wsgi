# The application runs inside wsgiref's validator with warnings as errors,
# so any protocol slip on the server's side fails the request.
import warnings
from wsgiref.validate import validator

warnings.simplefilter('error')


def inner(environ, start_response):
    inp = environ['wsgi.input']
    first = inp.readline()
    rest = inp.read(int(environ.get('CONTENT_LENGTH') or 0))
    lines = inp.readlines()
    for _ in inp:
        pass
    environ['wsgi.errors'].write('validated request\n')
    environ['wsgi.errors'].writelines(['a\n', 'b\n'])
    environ['wsgi.errors'].flush()
    body = b'ok:' + first + b'|' + rest + b'|' + str(len(lines)).encode()
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return [body]


application = validator(inner)
