# An auth script that raises: the request must be refused with 500.
def check_password(environ, user, password):
    raise RuntimeError("auth backend down")
