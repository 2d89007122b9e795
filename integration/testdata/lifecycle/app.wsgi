# The lifecycle tests' application: PATH_INFO picks the behaviour.
import json
import os
import time


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    if path == "/sleep":
        # ?SECONDS or ?SECONDS:PIDFILE (the pid is written before sleeping)
        secs, _, pidfile = query.partition(":")
        if pidfile:
            with open(pidfile + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(pidfile + ".tmp", pidfile)
        time.sleep(float(secs or "1"))
    elif path == "/readbody":
        # Reads the whole body; a failed read is reported and raised.
        try:
            data = environ["wsgi.input"].read()
        except OSError as e:
            environ["wsgi.errors"].write("readbody: OSError %r\n" % str(e))
            raise
        body = b"%d bytes\n" % len(data)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    elif path == "/readsleep":
        # ?BYTES:SECONDS: reads that much of the body, then sleeps.
        n, _, secs = query.partition(":")
        environ["wsgi.input"].read(int(n))
        time.sleep(float(secs or "1"))
    elif path == "/alloc":
        # ?MEGABYTES: a MemoryError under virtual-memory-limit is a 500.
        block = bytearray(int(query) << 20)
        body = b"allocated %d\n" % len(block)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    elif path == "/limits":
        import resource
        body = json.dumps({"as": resource.getrlimit(resource.RLIMIT_AS)[0],
                           "data": resource.getrlimit(resource.RLIMIT_DATA)[0],
                           "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
                           "nice": os.getpriority(os.PRIO_PROCESS, 0)}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    elif path == "/prefix":
        import sys
        body = json.dumps({"prefix": sys.prefix, "executable": sys.executable}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    elif path == "/deadlock":
        # Holds the GIL inside C for a long time: no Python thread can run.
        import ctypes
        ctypes.PyDLL("libc.so.6").sleep(int(query or "30"))
    elif path == "/ids":
        mask = os.umask(0)
        os.umask(mask)
        body = json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
                           "umask": mask, "cwd": os.getcwd(), "pid": os.getpid()}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
