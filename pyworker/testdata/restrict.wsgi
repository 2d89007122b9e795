# Reports what print(), sys.stdin, sys.stdout's attributes and
# signal.signal() do in this worker.
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
    # Any use of a restricted stream fails, attribute access included
    # (Mercurial reads sys.stdout.buffer at import).
    for name, use in (('buffer', lambda: sys.stdout.buffer), ('encoding', lambda: sys.stdout.encoding),
                      ('fileno', lambda: sys.stdout.fileno()), ('stdin.buffer', lambda: sys.stdin.buffer)):
        try:
            use()
            out.append('%s ok' % name)
        except OSError as e:
            out.append('%s: %s: %s' % (name, type(e).__name__, e))
    try:
        r = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        out.append('signal returned %r' % (r,))
    except Exception as e:
        out.append('signal: %s: %s' % (type(e).__name__, e))
    body = '\n'.join(out).encode()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [body]
