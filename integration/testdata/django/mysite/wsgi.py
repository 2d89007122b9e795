"""The WSGI script of the project: wsgifcgi's [[script-alias]] points here.

The project directory must be on sys.path: python-path of the daemon group
(WSGIDaemonProcess ... python-path=/path/to/project).
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')

application = get_wsgi_application()
