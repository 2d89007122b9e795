# The example application that the default conf.d serves.
import os
import sys


def application(environ, start_response):
    lines = [
        "Hello from wsgifcgi!",
        "",
        "SCRIPT_NAME      %r" % environ.get("SCRIPT_NAME"),
        "PATH_INFO        %r" % environ.get("PATH_INFO"),
        "process group    %r" % environ.get("mod_wsgi.process_group"),
        "application group %r" % environ.get("mod_wsgi.application_group"),
        "worker pid       %d" % os.getpid(),
        "python           %s" % sys.version.split()[0],
    ]
    body = ("\n".join(lines) + "\n").encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    return [body]
