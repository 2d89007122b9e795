# The integration tests' application: one WSGI app whose PATH_INFO picks the
# behaviour. It is wrapped in wsgiref.validate, with its warnings made errors,
# so any breach of PEP 3333 by the server fails the request.
import hashlib
import json
import os
import time
import warnings
from wsgiref.validate import validator, WSGIWarning

warnings.simplefilter("error", WSGIWarning)


def hello(environ, start_response):
    body = b"Hello from wsgifcgi\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def echo(environ, start_response):
    # Streams the body back: read in blocks, never whole.
    length = int(environ.get("CONTENT_LENGTH") or 0)
    inp = environ["wsgi.input"]
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(length))])

    def gen():
        left = length
        while left > 0:
            block = inp.read(min(65536, left))
            if not block:
                break
            left -= len(block)
            yield block
    return gen()


def sha(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    h = hashlib.sha256()
    inp = environ["wsgi.input"]
    left = length
    while left > 0:
        block = inp.read(min(65536, left))
        if not block:
            break
        h.update(block)
        left -= len(block)
    body = (h.hexdigest() + " %d\n" % (length - left)).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def generate(environ, start_response):
    # /gen?n=BYTES: deterministic bytes (the test computes the same sha256).
    n = int(environ.get("QUERY_STRING", "n=0").split("=")[1])
    block = bytes(range(256)) * 256  # 64 KiB
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])

    def gen():
        left = n
        while left > 0:
            b = block if left >= len(block) else block[:left]
            left -= len(b)
            yield b
    return gen()


def stream(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def gen():
        yield b"first\n"
        time.sleep(1)
        yield b"second\n"
    return gen()


class Endless:
    """Yields forever; records close() in the file named by ?marker=."""

    def __init__(self, marker):
        self.marker = marker

    def __iter__(self):
        block = b"x" * 65536
        while True:
            yield block

    def close(self):
        with open(self.marker, "w") as f:
            f.write("closed\n")


def endless(environ, start_response):
    marker = environ["QUERY_STRING"].split("=", 1)[1]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return Endless(marker)


def slow(environ, start_response):
    time.sleep(1)
    body = ("%d\n" % os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]


def boom(environ, start_response):
    raise RuntimeError("boom: the test app raised on purpose")


def env(environ, start_response):
    out = {k: v for k, v in environ.items() if isinstance(v, (str, bool, int, tuple))}
    out["pid"] = os.getpid()
    body = json.dumps(out, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


ROUTES = {
    "/hello": hello, "/echo": echo, "/sha": sha, "/gen": generate, "/stream/gen": stream,
    "/stream/endless": endless, "/slow": slow, "/boom": boom, "/env": env,
}


def app(environ, start_response):
    handler = ROUTES.get(environ.get("PATH_INFO", ""))
    if handler is None:
        body = b"no such test route\n"
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [body]
    return handler(environ, start_response)


application = validator(app)
