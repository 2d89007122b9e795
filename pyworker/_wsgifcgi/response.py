"""The response: start_response and its header checks, write(), and the
sending of a body, whole in one frame when it fits or streamed within the
send window."""

import os
import re
import struct
from itertools import chain as _chain
import traceback

from . import frames
from .frames import (HEAD_MAX, L_ERROR, L_WARN, MAX_DATA, OUT_ABORTED, OUT_APP_ERROR, OUT_OK,
                     OUT_TRUNCATED, T_DATA, T_END, T_HEADERS, T_RESPONSE, WHOLE_MAX)
from .request import Aborted

HDR = frames.HDR   # assigned, not imported: see frames.HDR
# A RESPONSE frame's header and the length of its HEADERS part.
WHOLE_HDR = struct.Struct(HDR.format + 'I')

HOP_BY_HOP = frozenset((
    'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization',
    'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade'))
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-zA-Z]+\Z")
BAD_VALUE = re.compile('[\r\n\0]')


class FileWrapper:
    """wsgi.file_wrapper: streams a file-like object in blocks."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        return self

    def __next__(self):
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


# Statuses, header names and whole headers (name, value) already found
# valid: an application sends the same few on every request, so each is
# checked once (bounded).
_good_statuses = set()
_good_names = {}      # name -> it is Content-Length
_good_pairs = {}      # (name, value) -> it is Content-Length
_good_heads = {}      # (status, tuple of headers) -> (HEADERS payload, Content-Length)
_TUPLE, _STR = {tuple}, {str}


def check_status(status):
    if status in _good_statuses and type(status) is str:
        return
    if type(status) is not str:
        raise TypeError('expected unicode object, value of type %s found'
                        % type(status).__name__)
    if len(status) < 4 or not status[:3].isdigit() or status[3] != ' ' \
            or not status[:3].isascii() or status[0] == '0':
        raise ValueError('status must be "NNN reason": %r' % status)
    if BAD_VALUE.search(status):
        raise ValueError('status contains a control character: %r' % status)
    if len(_good_statuses) < 256:
        _good_statuses.add(status)


def check_name(name):
    """Validates a header name; True if it is Content-Length."""
    if not TOKEN.match(name):
        raise ValueError('invalid response header name %r' % name)
    lname = name.lower()
    if lname in HOP_BY_HOP:
        raise ValueError('hop-by-hop header %r not allowed in a WSGI response' % name)
    is_length = lname == 'content-length'
    if len(_good_names) < 1024:
        _good_names[name] = is_length
    return is_length


def check_header(item):
    """Validates one start_response header; True if it is Content-Length."""
    if type(item) is not tuple or len(item) != 2:
        raise TypeError('list of tuple values expected, value of type %s found'
                        % type(item).__name__)
    name, value = item
    if type(name) is not str or type(value) is not str:
        raise TypeError('expected unicode object, value of type %s found'
                        % type(name if type(name) is not str else value).__name__)
    is_length = _good_names.get(name)
    if is_length is None:
        is_length = check_name(name)
    if BAD_VALUE.search(value):
        raise ValueError('embedded newline in response header with name %r' % name)
    if is_length:
        try:
            n = int(value.strip())
        except ValueError:
            raise ValueError('invalid Content-Length %r' % value) from None
        if n < 0:
            raise ValueError('invalid Content-Length %r' % value)
    if len(_good_pairs) < 4096:
        _good_pairs[item] = is_length
    return is_length


def encode_headers(status, headers):
    """Validates start_response arguments and returns the HEADERS payload and
    the declared Content-Length (None if absent)."""
    try:
        key = (status, tuple(headers))
        done = _good_heads.get(key)
    except TypeError:    # not iterable, or unhashable: not headers that pass
        key = done = None
    # A hit is an equal status and list: it passes as it is only in the
    # exact types checked (str and tuples of two str, not subclasses).
    if done is not None and type(status) is str and type(headers) is list \
            and set(map(type, headers)) <= _TUPLE and set(map(type, _chain(*headers))) <= _STR:
        return done
    done = _encode_headers(status, headers)
    if key is not None and len(done[0]) <= 2048 and len(_good_heads) < 512:
        _good_heads[key] = done
    return done


def _encode_headers(status, headers):
    check_status(status)
    if type(headers) is not list:
        raise TypeError('response headers must be a list')
    fields = [status]
    length = None
    for item in headers:
        try:
            is_length = _good_pairs.get(item)
        except TypeError:    # unhashable: not a pair of strings
            is_length = None
        # A hit is an equal pair: it passes as it is only in the exact types
        # checked (a tuple of two str, not subclasses).
        if is_length is None or type(item) is not tuple or type(item[0]) is not str \
                or type(item[1]) is not str:
            is_length = check_header(item)
        if is_length:
            length = int(item[1])
        fields += item
    head = '\0'.join(fields).encode('latin-1')
    if len(head) > HEAD_MAX:
        raise ValueError('response headers larger than %d bytes' % HEAD_MAX)
    return head, length


class Response:
    """One response: start_response, write(), and the running of the
    application to the end of what it returns."""

    # Until set on the instance (class attributes: a response that never
    # sets one costs no assignment).
    status = None
    head = None          # encoded HEADERS payload, until sent
    sent = False         # HEADERS went out
    left = None          # Content-Length still to send
    dropped = 0
    held = None          # a whole response's body blocks, sent with its end

    def __init__(self, req, chan, environ):
        self.req = req
        self.chan = chan
        self.environ = environ
        # The web server sends no body for HEAD: the application still runs
        # to the end (generators, close()), but its bytes stay here.
        self.head_only = environ.get('REQUEST_METHOD') == 'HEAD'

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError('start_response() called a second time without exc_info')
        self.head, self.left = encode_headers(status, headers)
        self.status = status
        return self.write

    def write(self, data):
        if not isinstance(data, bytes):
            raise TypeError('sequence of byte string values expected, value of type %s found'
                            % type(data).__name__)
        if self.status is None:
            raise RuntimeError('response has not been started')
        if self.req.poll is not None and self.held is None:
            # Notice an ABORT (or credit) already sent.
            self.req.poll()
        if self.req.aborted:
            raise Aborted('failed to write data')
        if not data:
            return
        if self.left is not None:
            if len(data) > self.left:
                self.dropped += len(data) - self.left
                data = data[:self.left]
                if not data:
                    return
            self.left -= len(data)
        if self.head_only:
            return
        self._send(data)

    def _send(self, data):
        if self.held is not None:
            self.held.append(data)
            return
        sid, n, off = self.req.sid, len(data), 0
        view = memoryview(data)
        while off < n:
            k = self.req.reserve(n - off)
            parts = self._head_parts()
            end = off + k
            while off < end:
                m = min(end - off, MAX_DATA)
                parts.append(HDR.pack(T_DATA, 0, sid, m))
                parts.append(view[off:off + m])
                off += m
            self.chan.send(parts)

    def _head_parts(self):
        if self.sent:
            return []
        self.req.repay(True)
        self.sent = True
        head, self.head = self.head, None
        return [HDR.pack(T_HEADERS, 0, self.req.sid, len(head)), head]

    def finish(self):
        """Sends the headers if no body block did. Returns the outcome."""
        if self.status is None:
            raise RuntimeError('response has not been started')
        if self.held is None:
            parts = self._head_parts()
            if parts:
                self.chan.send(parts)
        if self.dropped:
            self.chan.log(self.req.sid, L_WARN,
                          'mod_wsgi (pid=%d): %d bytes beyond Content-Length dropped '
                          'from the response of %r.'
                          % (os.getpid(), self.dropped, self.environ.get('SCRIPT_FILENAME')))
        if self.left and self.environ.get('REQUEST_METHOD') != 'HEAD' \
                and self.status[:3] not in ('204', '304') and self.status[0] != '1':
            self.chan.log(self.req.sid, L_WARN,
                          'mod_wsgi (pid=%d): response of %r ended %d bytes short of '
                          'its Content-Length.'
                          % (os.getpid(), self.environ.get('SCRIPT_FILENAME'), self.left))
            return OUT_TRUNCATED
        return OUT_OK

    def end(self, outcome):
        req, held = self.req, self.held
        req.repay(True)
        if held is None:
            self.chan.send([HDR.pack(T_END, outcome, req.sid, 0)])
            return
        # A whole response: headers, body and end in one frame.
        self.held, self.sent = None, True
        head, self.head = self.head, None
        body = held[0] if len(held) == 1 else b''.join(held)
        self.chan.send([WHOLE_HDR.pack(T_RESPONSE, outcome, req.sid, 4 + len(head) + len(body), len(head)),
                        head, body])

    def run(self, app, script):
        """Calls the application and sends what it returns; the outcome."""
        result = None
        outcome = OUT_OK
        try:
            result = app(self.environ, self.start_response)
            if type(result) in (list, tuple) and len(result) == 1 and not self.sent and \
                    isinstance(result[0], bytes) and len(result[0]) <= WHOLE_MAX:
                # The whole response fits one write with END.
                data = result[0]
                if self.status is not None and not self.req.aborted and self.left in (None, len(data)):
                    # What write() and finish() come to for a body as long
                    # as declared, without their calls.
                    self.held = [] if self.head_only else [data]
                    if self.left:
                        self.left = 0
                else:
                    self.held = []
                    self.write(data)
                    outcome = self.finish()
            else:
                if isinstance(result, FileWrapper):
                    self.send_file(result)
                else:
                    if self.left is not None and self.left <= WHOLE_MAX and not self.sent:
                        # A declared length that fits a whole response (Django's
                        # and Flask's responses): its blocks go out with the end.
                        self.held = []
                    for block in result:
                        self.write(block)
                outcome = self.finish()
        except BaseException:
            outcome = self.failed(script)
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                try:
                    close()
                except BaseException:
                    outcome = self.failed(script)
        return outcome

    def send_file(self, wrapper):
        """Streams a file_wrapper, never reading past the Content-Length."""
        read, size = wrapper.filelike.read, wrapper.blksize
        while True:
            if self.left is not None:
                if self.left <= 0:
                    return
                size = min(size, self.left)
            data = read(size)
            if not data:
                return
            self.write(data)

    def failed(self, script):
        """Logs the exception being handled and gives the outcome."""
        if self.req.aborted:
            return OUT_ABORTED
        self.chan.log(self.req.sid, L_ERROR,
                      "mod_wsgi (pid=%d): Exception occurred processing WSGI script '%s'.\n%s"
                      % (os.getpid(), script, traceback.format_exc().rstrip()))
        if self.held is not None:
            self.held = None
            self.sent = False
        return OUT_TRUNCATED if self.sent else OUT_APP_ERROR
