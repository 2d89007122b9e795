"""The wsgifcgi worker: runs WSGI applications for the Go bridge, as a
mod_wsgi daemon process does. pyworker.Start runs it with fd 3 (frames from
Go), fd 4 (frames to Go), fd 5 (these sources, read by boot) and stdin on
/dev/null.

    boot      imports these modules from the embedded sources, runs main
    main      reader thread, request threads, handling of a request
    frames    the pipe protocol: constants, Channel, FrameReader
    request   one request's body, send window and abort; wsgi.input/errors
    response  start_response, header checks, whole and streamed responses
    environ   the environ of a request, mod_wsgi's counters
    loader    WSGI scripts: loading, reloading, auth functions
    process   process setup: limits, title, mod_wsgi module, restrictions

The package's name keeps it apart from the applications' modules.
"""
