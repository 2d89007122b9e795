# Creates the file named by QUERY_STRING: proof that the request ran.
def application(environ, start_response):
    open(environ['QUERY_STRING'], 'w').close()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ran']
