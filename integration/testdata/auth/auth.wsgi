# Auth script of the access control tests: the mod_wsgi functions.
import hashlib

USERS = {"joe": "secret", "ann": "pw"}
GROUPS = {"ann": ["staff"]}


def check_password(environ, user, password):
    if user not in USERS:
        return None
    return USERS[user] == password


def get_realm_hash(environ, user, realm):
    if user not in USERS:
        return None
    return hashlib.md5(("%s:%s:%s" % (user, realm, USERS[user])).encode()).hexdigest()


def groups_for_user(environ, user):
    return GROUPS.get(user, [])


def allow_access(environ, host):
    if environ["REQUEST_URI"].startswith("/blocked"):
        return False
    return None
