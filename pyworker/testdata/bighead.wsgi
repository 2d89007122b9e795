# Sends a header of QUERY_STRING KiB.
def application(environ, start_response):
    start_response('200 OK', [('X-Big', 'h' * (int(environ['QUERY_STRING']) << 10))])
    return [b'sent']
