# Put on PYTHONPATH by a test: the interpreter hangs before the worker is ready.
import sys
import time

sys.stderr.write('hanging at import\n')
sys.stderr.flush()
time.sleep(60)
