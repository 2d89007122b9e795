# An endless response whose close() records that it ran, in RECORD_FILE.
# QUERY_STRING: 'read' reads the body first; 'trickle' sends a small block
# every 50 ms (the worker never waits for credit).
import os
import time


class Endless:
    def __init__(self, path, trickle):
        self.path = path
        self.trickle = trickle

    def __iter__(self):
        block = b'y' * (16 if self.trickle else 65536)
        while True:
            yield block
            if self.trickle:
                time.sleep(0.05)

    def close(self):
        with open(self.path, 'w') as f:
            f.write('closed')


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    if environ.get('QUERY_STRING') == 'read':
        environ['wsgi.input'].read(10)
    return Endless(environ['RECORD_FILE'], environ.get('QUERY_STRING') == 'trickle')
