# Imports modules that only Config.PythonPath (and a .pth file in it) provide.
def application(environ, start_response):
    import sitemod
    import pthmod
    start_response('200 OK', [])
    return [(sitemod.NAME + '+' + pthmod.NAME).encode()]
