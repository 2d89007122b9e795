# Sleeps QUERY_STRING seconds, then answers. At exit it leaves ATEXIT_FILE.
import atexit
import os
import time


def _bye():
    path = os.environ.get('ATEXIT_FILE')
    if path:
        with open(path, 'w') as f:
            f.write('atexit ran')


atexit.register(_bye)


def application(environ, start_response):
    environ['wsgi.errors'].write('sleeping\n')
    environ['wsgi.errors'].flush()
    time.sleep(float(environ['QUERY_STRING']))
    start_response('200 OK', [])
    return [b'slept']
