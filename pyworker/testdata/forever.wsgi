# An endless response whose close() records that it ran, in RECORD_FILE.
import os


class Endless:
    def __init__(self, path):
        self.path = path

    def __iter__(self):
        block = b'y' * 65536
        while True:
            yield block

    def close(self):
        with open(self.path, 'w') as f:
            f.write('closed')


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])
    if environ.get('QUERY_STRING') == 'read':
        environ['wsgi.input'].read(10)
    return Endless(environ['RECORD_FILE'])
