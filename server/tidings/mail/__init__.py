"""E-mail transports (SMTP, console) behind one interface.

``base`` states the contract, ``smtp`` sends through an SMTP server with a
small pool of connections, ``console`` prints (the embedded default), and
``factory`` picks one from settings.
"""
