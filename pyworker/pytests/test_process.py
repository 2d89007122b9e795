"""process: the restricted stdio and signal, the mod_wsgi module, umask."""

import io
import os
import signal
import sys
import unittest

from _wsgifcgi.process import RestrictedStream, apply_limits, mod_wsgi_module, restrict_signal


class ProcessTest(unittest.TestCase):

    def stderr(self):
        """Captures sys.stderr for the rest of the test."""
        buf, saved = io.StringIO(), sys.stderr
        sys.stderr = buf
        self.addCleanup(setattr, sys, 'stderr', saved)
        return buf

    def test_restricted_stream_refuses_everything(self):
        err = self.stderr()
        stream = RestrictedStream('stdtest')
        for use in (lambda: stream.write('x'), lambda: stream.buffer, lambda: stream.fileno(),
                    lambda: stream.encoding, lambda: setattr(stream, 'x', 1), lambda: print('x', file=stream)):
            with self.assertRaisesRegex(OSError, r'sys\.stdtest access restricted by mod_wsgi'):
                use()
        self.assertEqual(repr(stream), '<mod_wsgi.Restricted sys.stdtest>')
        # The first refusal says which key lifts it; the others are quiet.
        self.assertEqual(err.getvalue().count('\n'), 1)
        self.assertIn('set restrict-stdtest = false in [server]', err.getvalue())
        with self.assertRaises(OSError):
            RestrictedStream('stdtest').read()
        self.assertEqual(err.getvalue().count('\n'), 1)

    def test_restricted_signal_registers_nothing(self):
        err = self.stderr()
        register = restrict_signal(signal.signal)
        self.assertEqual(register.__doc__, signal.signal.__doc__)
        before = signal.getsignal(signal.SIGUSR2)

        def handler(signum, frame):
            pass
        self.assertIs(register(signal.SIGUSR2, handler), handler)
        self.assertIs(signal.getsignal(signal.SIGUSR2), before)
        self.assertIn('Callback registration for signal %d ignored.' % signal.SIGUSR2, err.getvalue())
        self.assertIn('test_restricted_signal_registers_nothing', err.getvalue())   # the caller's stack

    def test_mod_wsgi_module(self):
        mod = mod_wsgi_module({'process_group': 'g', 'application_group': 'a', 'threads': 5,
                               'processes': 3})
        self.assertEqual(mod.__name__, 'mod_wsgi')
        self.assertEqual((mod.process_group, mod.application_group, mod.version, mod.maximum_processes,
                          mod.threads_per_process), ('g', 'a', (4, 9, 4), 3, 5))
        mod = mod_wsgi_module({})
        self.assertEqual((mod.process_group, mod.application_group, mod.maximum_processes,
                          mod.threads_per_process), ('', '', 1, 1))

    def test_umask(self):
        saved = os.umask(0o022)
        self.addCleanup(os.umask, saved)
        apply_limits({'umask': 0o027})
        self.assertEqual(os.umask(0o022), 0o027)
        apply_limits({})
        self.assertEqual(os.umask(0o022), 0o022)


if __name__ == '__main__':
    unittest.main()
