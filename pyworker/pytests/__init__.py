"""Unit tests of the worker's modules (pyworker/_wsgifcgi), run from
pyworker/ with python3 -m unittest discover -s pytests -t . (make pyunit)."""
