# Streams QUERY_STRING MiB of 'x' in 64 KiB blocks, or a short reply for 'small'.
def application(environ, start_response):
    q = environ.get('QUERY_STRING', '')
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    if q == 'small':
        return [b'small']
    block = b'x' * 65536
    return (block for _ in range(int(q) * 16))
