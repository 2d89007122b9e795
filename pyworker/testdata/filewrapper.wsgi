# Serves DATA_FILE through wsgi.file_wrapper; QUERY_STRING, if set, is the
# Content-Length to declare. close() of the file is recorded in RECORD_FILE.
import os


class Tracked:
    def __init__(self, path, record):
        self.f = open(path, 'rb')
        self.record = record
        self.reads = 0

    def read(self, n):
        self.reads += 1
        return self.f.read(n)

    def close(self):
        self.f.close()
        with open(self.record, 'w') as out:
            out.write('closed after %d reads' % self.reads)


def application(environ, start_response):
    path = environ['DATA_FILE']
    headers = [('Content-Type', 'application/octet-stream')]
    if environ.get('QUERY_STRING'):
        headers.append(('Content-Length', environ['QUERY_STRING']))
    start_response('200 OK', headers)
    return environ['wsgi.file_wrapper'](Tracked(path, environ['RECORD_FILE']), 4096)
