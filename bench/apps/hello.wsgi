# The benchmark application: the same file is served by every contender
# (wsgifcgi, uWSGI, mod_wsgi, gunicorn). Paths:
# the last segment of PATH_INFO picks the answer (so /stream/big is /big):
#   /           "Hello, World!" (13 bytes)
#   /1m         a 1 MiB response in one bytes object
#   /upload     reads the request body in 64 KiB chunks, answers its size
#   /big?n=N    streams N bytes in 256 KiB chunks (default 1 GiB)
#   /pid        the worker's pid
import os

HELLO = b"Hello, World!"
ONE_MIB = b"x" * (1 << 20)
CHUNK = b"y" * (256 << 10)


def _big(n):
    while n > 0:
        k = min(n, len(CHUNK))
        yield CHUNK if k == len(CHUNK) else CHUNK[:k]
        n -= k


def application(environ, start_response):
    path = "/" + (environ.get("PATH_INFO") or "/").rsplit("/", 1)[-1]
    if path == "/1m":
        body = ONE_MIB
    elif path == "/upload":
        left = int(environ.get("CONTENT_LENGTH") or 0)
        inp = environ["wsgi.input"]
        total = 0
        while left > 0:
            data = inp.read(min(left, 65536))
            if not data:
                break
            total += len(data)
            left -= len(data)
        body = str(total).encode()
    elif path == "/big":
        n = 1 << 30
        for kv in environ.get("QUERY_STRING", "").split("&"):
            if kv.startswith("n="):
                n = int(kv[2:])
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(n))])
        return _big(n)
    elif path == "/pid":
        body = str(os.getpid()).encode()
    else:
        body = HELLO
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
