# Reports the environ types the server adds.
import sys


def application(environ, start_response):
    keys = ['wsgi.version', 'wsgi.multithread', 'wsgi.multiprocess', 'wsgi.run_once',
            'wsgi.input_terminated', 'wsgi.url_scheme']
    body = ' '.join('%s=%r' % (k, environ[k]) for k in keys)
    body += ' name=%s' % __name__
    body += ' argv=%r' % (sys.argv,)
    body += ' mod_wsgi.process_group=%s' % sys.modules['mod_wsgi'].process_group
    body += ' custom=%s' % environ.get('CUSTOM')
    start_response('200 OK', [])
    return [body.encode('latin-1')]  # PEP 3333: bytes in, bytes out
