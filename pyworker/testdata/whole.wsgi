# The shapes a response takes: QUERY_STRING picks one.
#   list       a list of one block
#   declared   an iterable (not a list) of blocks with a Content-Length of 20
#   undeclared the same without a Content-Length: streamed
#   large      a list of one block of 70,000 bytes: over a whole response
def application(environ, start_response):
    q = environ.get('QUERY_STRING', '')
    body = [b'0123456789', b'abcdefghij']
    headers = [('Content-Type', 'text/plain')]
    if q == 'declared':
        headers.append(('Content-Length', '20'))
    start_response('200 OK', headers)
    if q == 'list':
        return [b''.join(body)]
    if q == 'large':
        return [b'z' * 70000]
    return iter(body)
