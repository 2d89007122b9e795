"""A small Flask application served by wsgifcgi: a JSON API, a streaming
response and a file upload."""
import hashlib
import os
import threading
import time

from flask import Flask, Response, abort, jsonify, request, stream_with_context, url_for
from werkzeug.exceptions import HTTPException

app = Flask(__name__)

_lock = threading.Lock()
_items = {1: {'id': 1, 'name': 'first'}}
_next_id = [2]


@app.errorhandler(HTTPException)
def json_error(e):
    """Every HTTP error as JSON, as an API does."""
    return jsonify(error=e.name, status=e.code, description=e.description), e.code


@app.get('/api/items')
def list_items():
    with _lock:
        items = sorted(_items.values(), key=lambda i: i['id'])
    return jsonify(items=items, pid=os.getpid())


@app.post('/api/items')
def create_item():
    data = request.get_json()  # 400 (JSON, via json_error) when not JSON
    if not isinstance(data, dict) or not isinstance(data.get('name'), str):
        abort(400, description='a JSON object with a "name" string is required')
    with _lock:
        item = {'id': _next_id[0], 'name': data['name'], 'tags': data.get('tags', [])}
        _items[item['id']] = item
        _next_id[0] += 1
    resp = jsonify(item)
    resp.status_code = 201
    resp.headers['Location'] = url_for('get_item', item_id=item['id'])
    return resp


@app.get('/api/items/<int:item_id>')
def get_item(item_id):
    with _lock:
        item = _items.get(item_id)
    if item is None:
        abort(404, description='no item %d' % item_id)
    return jsonify(dict(item, url=url_for('get_item', item_id=item_id, _external=True)))


@app.get('/stream')
def stream():
    """Yields a first chunk, then waits (at most ?wait= seconds) until the file
    named by ?flag= exists before yielding the rest. The client creates the file
    once it has the first chunk, so the last chunk says whether the first one
    reached the client while the generator was still running."""
    flag = request.args['flag']
    wait = float(request.args.get('wait', '10'))

    @stream_with_context
    def generate():
        # request is still usable here thanks to stream_with_context
        yield 'first chunk for %s\n' % request.args.get('name', '?')
        deadline = time.monotonic() + wait
        while not os.path.exists(flag):
            if time.monotonic() > deadline:
                yield 'timeout: the flag never appeared\n'
                return
            time.sleep(0.01)
        for i in range(3):
            yield 'chunk %d of %s\n' % (i, request.path)
        yield 'released\n'

    return Response(generate(), mimetype='text/plain')


@app.post('/upload')
def upload():
    f = request.files.get('file')
    if f is None:
        abort(400, description='no file part')
    h = hashlib.sha256()
    size = 0
    while True:
        block = f.stream.read(65536)
        if not block:
            break
        size += len(block)
        h.update(block)
    return jsonify(filename=f.filename, size=size, sha256=h.hexdigest(),
                   note=request.form.get('note', ''))
