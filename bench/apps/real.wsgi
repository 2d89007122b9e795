# The real-application scenarios: served by every Python contender in place
# of hello.wsgi (a separate start, so hello world pays nothing for them).
#   /flask/    a Flask view rendering a Jinja template of 20 rows
#   /django/   a Django view: an ORM query of 20 rows on sqlite, answered
#              as JSON (djangoapp/)
# The sqlite database (djangoapp/bench.sqlite3) is made at setup by
# `python3 djangoapp/mkdb.py`.
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
if here not in sys.path:
    sys.path.insert(0, here)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoapp.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

import flaskapp  # noqa: E402

flask_app = flaskapp.app
django_app = get_wsgi_application()


def application(environ, start_response):
    path = environ.get("PATH_INFO") or "/"
    if path.startswith("/flask/"):
        return flask_app(environ, start_response)
    if path.startswith("/django/"):
        return django_app(environ, start_response)
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]
