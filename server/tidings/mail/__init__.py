"""E-mail transports (SMTP, console) behind one interface.

Modules:

- ``base``: the mailer contract.
- ``smtp``: sends through an SMTP server over a small pool of connections.
- ``console``: prints each e-mail (the embedded default).
- ``factory``: picks the mailer from settings.
"""
