"""``tidings vapid``: a new Web Push (VAPID) key pair, printed as settings lines.

The output can be appended to an env file as it is: the private key and a
subject line to edit, then the public key (a comment) that a page passes to
``pushManager.subscribe`` as ``applicationServerKey``; the server also serves
it at ``GET /api/v1/webpush/key`` once the private key is set.
"""

from __future__ import annotations

import argparse

from ..push import vapid


def cmd_vapid(args: argparse.Namespace) -> int:
    private, public = vapid.generate()
    print("# Web Push (VAPID) key pair: keep the private key secret, the same on every node.")
    print(f"TIDINGS_VAPID_PRIVATE_KEY={private}")
    print(f"TIDINGS_VAPID_SUBJECT={args.subject}")
    print("# public key (applicationServerKey; GET /api/v1/webpush/key serves it too):")
    print(f"# {public}")
    return 0
