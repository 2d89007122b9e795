# The directives tests' application: PATH_INFO picks the behaviour. Module
# globals (and those of dirhelper, a module found on python-path) count the
# requests, so the tests can see which interpreter served them.
import json
import os
import signal
import sys

import dirhelper

COUNT = 0


def reply(start_response, body, status="200 OK", ctype="application/json"):
    if not isinstance(body, bytes):
        body = json.dumps(body, sort_keys=True).encode()
    start_response(status, [("Content-Type", ctype), ("Content-Length", str(len(body)))])
    return [body]


def count(environ, start_response):
    global COUNT
    COUNT += 1
    return reply(start_response, {
        "count": COUNT, "helper": dirhelper.bump(), "pid": os.getpid(),
        "application_group": environ["mod_wsgi.application_group"],
        "process_group": environ["mod_wsgi.process_group"],
    })


def env(environ, start_response):
    out = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
    out["pid"] = os.getpid()
    return reply(start_response, out)


def do_print(environ, start_response):
    print("printed-by-the-app pid %d" % os.getpid())
    return reply(start_response, b"printed\n", ctype="text/plain")


def do_stdin(environ, start_response):
    data = sys.stdin.read()
    return reply(start_response, ("read %d\n" % len(data)).encode(), ctype="text/plain")


def do_signal(environ, start_response):
    signal.signal(signal.SIGUSR2, lambda signum, frame: None)
    return reply(start_response, b"continued after signal.signal\n", ctype="text/plain")


def flags(environ, start_response):
    import pthmod
    return reply(start_response, {"optimize": sys.flags.optimize, "pthmod": pthmod.NAME,
                                  "assert_stripped": not __debug__})


def read_all(environ, start_response):
    data = environ["wsgi.input"].read()
    return reply(start_response, {"length": len(data), "content_length": environ.get("CONTENT_LENGTH"),
                                  "head": data[:32].decode("latin-1")})


ROUTES = {"/count": count, "/env": env, "/print": do_print, "/stdin": do_stdin,
          "/signal": do_signal, "/flags": flags, "/read": read_all}


def application(environ, start_response):
    handler = ROUTES.get(environ.get("PATH_INFO", ""), env)
    return handler(environ, start_response)


def app2(environ, start_response):
    return reply(start_response, b"this is app2\n", ctype="text/plain")
