"""frames: the protocol's frames both ways through real pipes."""

import os
import threading
import unittest

from _wsgifcgi import frames
from _wsgifcgi.frames import FrameReader, HDR, L_WARN, T_BODY, T_DATA, T_LOG, T_REQUEST

from .wire import Wire

FRAME_TYPES = sorted(v for k, v in vars(frames).items() if k.startswith('T_'))


class FramesTest(unittest.TestCase):

    def setUp(self):
        self.wire = Wire()
        self.addCleanup(self.wire.close)

    def test_every_frame_type_from_the_worker(self):
        chan = self.wire.chan
        for i, typ in enumerate(FRAME_TYPES):
            chan.frame(typ, i + 1, bytes(range(i % 7)) * i, flags=i % 3)
        got = self.wire.received(len(FRAME_TYPES))
        self.assertEqual(got, [(typ, i % 3, i + 1, bytes(range(i % 7)) * i)
                               for i, typ in enumerate(FRAME_TYPES)])

    def test_every_frame_type_to_the_worker(self):
        sizes = [0, 1, 12, 4096, FrameReader.SIZE - 12, FrameReader.SIZE + 1, 3 * FrameReader.SIZE]
        sent = []
        for i, typ in enumerate(FRAME_TYPES):
            payload = os.urandom(sizes[i % len(sizes)])
            sent.append((typ, i & 3, 0xfffffff0 + i, payload))
        writer = threading.Thread(target=lambda: [self.wire.send(t, s, p, f) for t, f, s, p in sent])
        writer.start()
        got = [self.wire.frames.read() for _ in sent]
        writer.join()
        self.assertEqual(got, sent)

    def test_a_frame_in_pieces(self):
        reader = self.wire.frames
        data = self.wire.frame(T_BODY, 7, b'x' * 100, flags=1)
        self.assertIsNone(reader.read_nowait())
        start = 0
        for end in (5, 12, 50):
            self.wire.write(data[start:end])
            start = end
            self.assertIsNone(reader.read_nowait(), 'after %d bytes' % end)
            self.assertIsNone(reader.next_buffered())
        self.wire.write(data[start:])
        self.assertEqual(reader.read_nowait(), (T_BODY, 1, 7, b'x' * 100))
        self.assertIsNone(reader.next_buffered())

    def test_frames_read_at_once_come_from_the_buffer(self):
        reader = self.wire.frames
        self.wire.write(b''.join(self.wire.frame(T_REQUEST, sid, b'env%d' % sid) for sid in (1, 2, 3)))
        self.assertEqual(reader.read(), (T_REQUEST, 0, 1, b'env1'))
        self.wire.close_to_worker()
        # No more reading: the others are parsed out of what was read.
        self.assertEqual(reader.next_buffered(), (T_REQUEST, 0, 2, b'env2'))
        self.assertEqual(reader.read_nowait(), (T_REQUEST, 0, 3, b'env3'))
        self.assertIsNone(reader.next_buffered())
        self.assertIsNone(reader.read())
        with self.assertRaises(EOFError):
            reader.read_nowait()

    def test_a_sender_that_finds_a_write_under_way_only_queues(self):
        chan, big = self.wire.chan, os.urandom(3 << 20)   # more than the pipe holds
        first = threading.Thread(target=chan.frame, args=(T_DATA, 1, big))
        first.start()
        while not chan.writing:
            pass
        chan.frame(T_LOG, 2, b'queued', flags=L_WARN)   # returns though the pipe is full
        self.assertTrue(first.is_alive())
        got = self.wire.received(2)
        first.join()
        self.assertEqual(got, [(T_DATA, 0, 1, big), (T_LOG, L_WARN, 2, b'queued')])
        self.assertFalse(chan.writing)

    def test_many_parts_in_one_write(self):
        parts = []
        for sid in range(100):
            parts += [HDR.pack(T_DATA, 0, sid, 1), bytes([sid])]
        self.wire.chan.send(parts)
        self.assertEqual(self.wire.received(100), [(T_DATA, 0, sid, bytes([sid])) for sid in range(100)])

    def test_log_text_is_utf8(self):
        self.wire.chan.log(9, L_WARN, 'caf\xe9 \udcff')
        self.assertEqual(self.wire.received(1), [(T_LOG, L_WARN, 9, b'caf\xc3\xa9 ?')])


if __name__ == '__main__':
    unittest.main()
