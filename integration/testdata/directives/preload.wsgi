# Loaded by [[import-script]] before any request: records when and where.
import json
import os
import time

LOADED_AT = time.time()
LOADED_PID = os.getpid()
with open(os.path.join(os.path.dirname(__file__), "marker", "loaded"), "a") as f:
    f.write("%d\n" % os.getpid())

REQUESTS = 0


def application(environ, start_response):
    global REQUESTS
    REQUESTS += 1
    body = json.dumps({"loaded_pid": LOADED_PID, "pid": os.getpid(), "requests": REQUESTS,
                       "loaded_at": LOADED_AT, "now": time.time()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
