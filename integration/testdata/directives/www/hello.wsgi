# Run by a [[directory]] handler = "wsgi-script".
import json


def application(environ, start_response):
    body = json.dumps({k: environ.get(k) for k in ("SCRIPT_NAME", "PATH_INFO", "SCRIPT_FILENAME")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
