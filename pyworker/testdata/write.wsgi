def application(environ, start_response):
    write = start_response('200 OK', [('Content-Type', 'text/plain')])
    write(b'part1 ')
    write(b'')
    write(b'part2 ')
    return [b'part3']
