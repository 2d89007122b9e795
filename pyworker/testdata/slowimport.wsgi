# Takes a while to import, so that concurrent first requests overlap its load.
import time

time.sleep(0.5)


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"loaded"]
