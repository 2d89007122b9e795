# Sleeps QUERY_STRING seconds without a word, then answers.
import time


def application(environ, start_response):
    time.sleep(float(environ['QUERY_STRING']))
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'napped']
