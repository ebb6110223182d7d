"""The e-mail worker: the push worker's claim, lease, renewal and settlement loop over the
queue's ``channel = 'email'`` jobs, sending with a mailer.

Everything the push worker's contract says of jobs (at-least-once, leases taken
over after ``lease`` + ``poll`` seconds, 'sending' rows committed first, outcomes
written with the job's change) holds for e-mails; what is sent and how each
answer is settled is :mod:`.email_send`'s. Sends run at most ``connections`` at
once (the mailer bounds them); twice that many jobs are held. ``unsubscribe`` makes
the one-click unsubscribe URL of a user and type (None: e-mails carry none).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from ..mail.base import Mailer
from ..push.registry import Registry
from ..store.push_jobs import Pool
from .email_send import EmailSender
from .push import PushWorker, WorkerConfig


class EmailWorker(PushWorker):
    channel = "email"

    def __init__(self, pool: Pool, mailer: Mailer, config: WorkerConfig | None = None, *,
                 preferences_url: str | None = None,
                 unsubscribe: Callable[[str, str], str] | None = None, connections: int = 4,
                 clock: Callable[[], float] | None = None,
                 rand: Callable[[], float] = random.random):
        super().__init__(pool, Registry([]), config, clock=clock, rand=rand)
        self.mailer = mailer
        self.capacity = self.config.max_in_flight or 2 * max(1, connections)
        self.sender = EmailSender(  # type: ignore[assignment]
            pool, mailer, self.settler, self.sending_log, self.config.max_attempts,
            preferences_url, clock or time.time, rand, unsubscribe)
