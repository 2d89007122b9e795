# A module imported by app.wsgi through python-path, with its own counter.
COUNT = 0


def bump():
    global COUNT
    COUNT += 1
    return COUNT
