//! Serve a WSGI or ASGI app from an embedded CPython (PyO3) to hyper, through a fixed pool of Python threads.
//! Contract: docs/design/contracts.md (mse-python).
