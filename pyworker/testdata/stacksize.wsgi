import threading


def application(environ, start_response):
    body = str(threading.stack_size()).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
