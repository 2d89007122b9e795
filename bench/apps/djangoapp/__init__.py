# The Django application of the real-application scenario (see real.wsgi).
