import time


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    yield b'first'
    time.sleep(1)
    yield b'second'
