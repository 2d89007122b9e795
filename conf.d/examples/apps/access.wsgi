# Access script of 90-auth-scripts.toml (WSGIAccessScript): True allows,
# False is a 403, None has no opinion (allowed).
def allow_access(environ, host):
    return host in ("127.0.0.1", "::1", "localhost")
