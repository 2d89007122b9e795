# A small production-like settings module: no debug, an sqlite database
# beside this file (made by mkdb.py), the usual table-free middleware.
import os

BASE_DIR = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "wsgibench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["djangoapp"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "djangoapp.urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                         "NAME": os.path.join(BASE_DIR, "bench.sqlite3"),
                         "CONN_MAX_AGE": 60}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
