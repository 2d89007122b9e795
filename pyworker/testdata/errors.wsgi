def application(environ, start_response):
    environ['wsgi.errors'].write('line from wsgi.errors\n')
    print('line from stderr print', file=__import__('sys').stderr)
    start_response('200 OK', [])
    return [b'']
