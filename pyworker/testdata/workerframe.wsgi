# Fails inside the worker's own code (start_response refuses the header name).
def application(environ, start_response):
    start_response('200 OK', [('Bad Name', 'x')])
    return [b'never']
