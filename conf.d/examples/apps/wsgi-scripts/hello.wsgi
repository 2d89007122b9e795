# Sample application of conf.d/examples: shows where the request was routed.
import os


def application(environ, start_response):
    keys = ("SCRIPT_NAME", "PATH_INFO", "mod_wsgi.process_group",
            "mod_wsgi.application_group", "mod_wsgi.callable_object",
            "REMOTE_USER", "AUTH_TYPE", "HTTP_AUTHORIZATION", "SITE")
    lines = ["%-28s %r" % (k, environ.get(k)) for k in keys]
    lines.append("%-28s %d" % ("pid", os.getpid()))
    body = ("\n".join(lines) + "\n").encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]


# A second entry point, for the callable-object examples.
def admin(environ, start_response):
    body = b"admin entry point\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
