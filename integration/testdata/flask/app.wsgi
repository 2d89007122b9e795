# The WSGI script for the Flask application: wsgifcgi's [[script-alias]]
# points here. The directory of flaskapp.py is on sys.path through the daemon
# group's python-path (WSGIDaemonProcess ... python-path=/path/to/app).
from flaskapp import app as application
