# Reports what print(), sys.stdin and signal.signal() do in this worker.
import signal
import sys


def application(environ, start_response):
    out = []
    try:
        print('printed to stdout')
        out.append('print ok')
    except IOError as e:
        out.append('print: %s' % e)
    try:
        sys.stdin.read()
        out.append('stdin ok')
    except IOError as e:
        out.append('stdin: %s' % e)
    try:
        r = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        out.append('signal returned %r' % (r,))
    except Exception as e:
        out.append('signal: %s: %s' % (type(e).__name__, e))
    body = '\n'.join(out).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
