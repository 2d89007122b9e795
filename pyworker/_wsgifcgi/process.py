"""Setup of the process before any application code runs, as a mod_wsgi
daemon process has it: limits, title, sys.path, the mod_wsgi module, and
the restrictions on sys.stdin, sys.stdout and signal.signal."""

import os
import sys
import traceback

from .environ import MOD_WSGI_VERSION


class RestrictedStream:
    """sys.stdin / sys.stdout replacement that refuses any use, attribute
    access included (.buffer, .encoding, .fileno()), as mod_wsgi's
    Restricted object does. The first refusal of each stream also logs the
    configuration key that lifts it."""

    __slots__ = ('_name', '_key')
    _logged = set()

    def __init__(self, name):
        object.__setattr__(self, '_name', name)
        object.__setattr__(self, '_key', 'restrict-' + name)

    def __getattribute__(self, attr):
        name = object.__getattribute__(self, '_name')
        if name not in RestrictedStream._logged:
            RestrictedStream._logged.add(name)
            sys.stderr.write('mod_wsgi (pid=%d): sys.%s access restricted by mod_wsgi; set '
                             '%s = false in [server] to allow it (the default since '
                             'mod_wsgi 3.0).\n'
                             % (os.getpid(), name, object.__getattribute__(self, '_key')))
        raise OSError('sys.%s access restricted by mod_wsgi' % name)

    def __setattr__(self, attr, value):
        self.__getattribute__(attr)

    def __repr__(self):
        return '<mod_wsgi.Restricted sys.%s>' % object.__getattribute__(self, '_name')


def restrict_signal(original):
    def intercept(signum, handler):
        sys.stderr.write('mod_wsgi (pid=%d): Callback registration for signal %d ignored.\n'
                         % (os.getpid(), int(signum)))
        traceback.print_stack(sys._getframe(1), file=sys.stderr)
        return handler
    intercept.__doc__ = original.__doc__
    return intercept


def set_title(title):
    """Rewrites argv in place so /proc/PID/cmdline and ps show title; the
    executable path used for exec (and the interpreter's prefix) stays real."""
    try:
        import ctypes
        with open('/proc/self/stat', 'rb') as f:
            fields = f.read().rsplit(b')', 1)[1].split()
        start, end = int(fields[45]), int(fields[46])
        raw = title.encode('utf-8')[:end - start - 1]
        ctypes.memmove(start, raw + b'\0' * (end - start - len(raw)), end - start)
        libc = ctypes.CDLL(None)
        libc.prctl(15, ctypes.c_char_p(raw[:15]), 0, 0, 0)  # PR_SET_NAME
    except Exception as e:
        sys.stderr.write('wsgifcgi: cannot set the process title: %s\n' % e)


def apply_limits(cfg):
    """umask, resource limits and priority of WSGIDaemonProcess, applied
    before any application code runs."""
    if cfg.get('umask') is not None:
        os.umask(int(cfg['umask']))
    import resource
    for key, which in (('memory_limit', 'RLIMIT_DATA'), ('virtual_memory_limit', 'RLIMIT_AS'),
                       ('cpu_time_limit', 'RLIMIT_CPU')):
        value = cfg.get(key)
        if value:
            limit = getattr(resource, which)
            hard = resource.getrlimit(limit)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(limit, (value, hard))
    if cfg.get('cpu_priority'):
        try:
            os.setpriority(os.PRIO_PROCESS, 0, int(cfg['cpu_priority']))
        except OSError as e:
            sys.stderr.write('mod_wsgi (pid=%d): Unable to set CPU priority %d: %s\n'
                             % (os.getpid(), int(cfg['cpu_priority']), e))


def mod_wsgi_module(cfg):
    """The mod_wsgi module as a daemon process of mod_wsgi 4.9 has it."""
    import types
    mod = types.ModuleType('mod_wsgi')
    mod.process_group = cfg.get('process_group', '')
    mod.application_group = cfg.get('application_group', '')
    mod.version = MOD_WSGI_VERSION
    # As mod_wsgi 4.9 sets them in a daemon process: the group's processes
    # and threads (ints).
    mod.maximum_processes = int(cfg.get('processes') or 1)
    mod.threads_per_process = int(cfg.get('threads') or 1)
    return mod


def setup_process(cfg):
    """Interpreter setup done before any application code runs."""
    apply_limits(cfg)
    os.set_inheritable(3, False)
    os.set_inheritable(4, False)
    os.set_blocking(3, True)
    os.set_blocking(4, True)
    if cfg.get('lend'):
        os.set_inheritable(6, False)   # the socket the bridge lends connections on
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except Exception:
            pass
    if cfg.get('title'):
        set_title(cfg['title'])
    sys.argv = ['mod_wsgi']
    import site
    for d in cfg.get('python_path') or ():
        site.addsitedir(d)
    sys.modules['mod_wsgi'] = mod_wsgi_module(cfg)
    if cfg.get('restrict_stdin'):
        sys.stdin = RestrictedStream('stdin')
    if cfg.get('restrict_stdout'):
        sys.stdout = RestrictedStream('stdout')
