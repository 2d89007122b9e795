"""Settings of a small but real Django project served by wsgifcgi.

The SQLite database lives in a writable directory: $MYSITE_DATA_DIR when set,
else var/ beside the project. The worker user must be able to write both the
database file and its directory (SQLite creates its journal there).
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get('MYSITE_DATA_DIR') or BASE_DIR / 'var')

SECRET_KEY = 'wsgifcgi-test-project-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz'
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost', '[::1]']

INSTALLED_APPS = [
    'django.contrib.admin',
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'django.contrib.messages',
    'django.contrib.staticfiles',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.contrib.auth.middleware.AuthenticationMiddleware',
    'django.contrib.messages.middleware.MessageMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]

ROOT_URLCONF = 'mysite.urls'

TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'DIRS': [],
        'APP_DIRS': True,
        'OPTIONS': {
            'context_processors': [
                'django.template.context_processors.debug',
                'django.template.context_processors.request',
                'django.contrib.auth.context_processors.auth',
                'django.contrib.messages.context_processors.messages',
            ],
        },
    },
]

WSGI_APPLICATION = 'mysite.wsgi.application'

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': str(DATA_DIR / 'db.sqlite3'),
    }
}
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

LANGUAGE_CODE = 'en-us'
TIME_ZONE = 'UTC'
USE_I18N = True
USE_L10N = True
USE_TZ = True

# Relative: Django prefixes it with SCRIPT_NAME (here the mount, e.g. /site/static/).
STATIC_URL = 'static/'

# Uploads above 1 MiB go to a temporary file in the data directory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 1 << 20
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR)

# With DEBUG off Django logs nothing to the console by default; send request
# errors to stderr, which wsgifcgi logs tagged with the process group.
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'stderr': {'class': 'logging.StreamHandler'}},
    'loggers': {'django': {'handlers': ['stderr'], 'level': 'WARNING'}},
}
