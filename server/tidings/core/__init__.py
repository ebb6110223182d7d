"""The rules of Tidings with no I/O: shapes, limits, policy, cursors.

Nothing here opens a socket, touches a clock it was not handed, or imports an
I/O library; every function is tested without an event loop.
"""
