raise ImportError('cannot-load-me')
