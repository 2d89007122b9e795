# Reports the mod_wsgi 4.x environ keys and module attributes, with types.
import json
import sys


def application(environ, start_response):
    out = {}
    for k in ('mod_wsgi.thread_id', 'mod_wsgi.thread_requests', 'mod_wsgi.total_requests',
              'mod_wsgi.script_start', 'mod_wsgi.ignore_activity', 'mod_wsgi.enable_sendfile',
              'mod_wsgi.daemon_connects'):
        if k in environ:
            out[k] = [type(environ[k]).__name__, environ[k]]
    mod = sys.modules['mod_wsgi']
    for k in ('threads_per_process', 'maximum_processes'):
        v = getattr(mod, k, None)
        out['module.' + k] = [type(v).__name__, v]
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [json.dumps(out, sort_keys=True).encode()]
