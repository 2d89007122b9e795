# Auth script of 90-auth-scripts.toml, with the functions mod_wsgi calls.
# Demo credentials only: joe/secret, ann/pw; ann is in "secret-agents".
import hashlib

USERS = {"joe": "secret", "ann": "pw"}
GROUPS = {"ann": ["secret-agents"]}


def check_password(environ, user, password):
    # WSGIAuthUserScript, AuthType Basic: True, False, or None (unknown user).
    if user not in USERS:
        return None
    return USERS[user] == password


def get_realm_hash(environ, user, realm):
    # WSGIAuthUserScript, AuthType Digest: md5("user:realm:password"), or None.
    if user not in USERS:
        return None
    return hashlib.md5(("%s:%s:%s" % (user, realm, USERS[user])).encode()).hexdigest()


def groups_for_user(environ, user):
    # WSGIAuthGroupScript: the groups "Require group ..." is checked against.
    return GROUPS.get(user, [])
