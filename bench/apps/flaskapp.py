# The Flask application of the real-application scenario: one view
# rendering a Jinja template (templates/rows.html, compiled once and cached
# by Flask) with 20 rows. Served at /flask/ through real.wsgi.
from flask import Flask, render_template

app = Flask(__name__)

ROWS = [{"id": i, "name": "item %d" % i, "price": i * 1.25, "stock": i % 7 == 0}
        for i in range(1, 21)]


@app.route("/flask/")
def rows():
    return render_template("rows.html", title="Items", rows=ROWS)
