def application(environ, start_response):
    body = ("user=%s type=%s auth=%s\n" % (environ.get("REMOTE_USER"), environ.get("AUTH_TYPE"),
                                             environ.get("HTTP_AUTHORIZATION"))).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
