"""Sending claimed e-mail jobs: the decision, the address, the message, the outcome.

What may live here: what happens to a batch of leased e-mail jobs (``channel =
'email'`` rows of the push-job queue) between the claim and the settlement; the
loop that claims, leases and renews is the push worker's
(:class:`tidings.workers.email.EmailWorker`).

Contract, per job:

- Decided at send time as a push is (:class:`~.push_policy.Decisions` for the
  ``email`` channel): the user turned e-mail off → 'skipped' ``preference: …``;
  inside quiet hours → 'skipped' ``quiet hours: deferred until …`` and due
  again then; a digest type → 'digested', then one e-mail for what is still
  unread when the digest is due (none if all was read: 'skipped'); a required
  type is sent whatever the user chose. A type no longer declared → 'skipped'.
- The address is the profile's, read when sent: no profile or no address →
  'skipped' ``no address: …``; an address marked bouncing → 'skipped'
  ``bouncing: …`` until the profile's address is changed.
- The message comes from the type's e-mail templates
  (:mod:`tidings.core.email_content`), with ``List-Unsubscribe`` naming the
  one-click URL of this user and type (``unsubscribe``; none for a required
  type, which cannot be turned off) and then the user's preferences page.
- A 'sending' row is committed before the send; then, by the mailer's outcome,
  in the transaction that settles the job: ``sent`` → 'sent', job deleted;
  ``retry`` (4xx, connection trouble) → 'retry', the job due again after the
  mailer's delay, 'dead' after ``max_attempts``; ``bounce`` → 'bounced' and the
  profile's address marked bouncing (answer and time), job deleted; ``failed``
  → 'failed', job deleted. A mailer that raises counts as a retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.email_content import Recipient, digest_email, notification_email
from ..core.email_message import Email
from ..core.mail_outcomes import MailOutcome, MailResult, retry_delay
from ..core.typedefs import TypeDefinition
from ..mail.base import Mailer
from ..services.metrics import Recorder
from ..store import digests, profiles
from ..store.delivery_log import Record
from ..store.push_jobs import Claimed, Pool
from .push_policy import Decided, Decisions
from .push_settle import JobLog, Settler

log = logging.getLogger(__name__)
CHANNEL = "email"
_ROW = {MailResult.SENT: "sent", MailResult.RETRY: "retry", MailResult.BOUNCE: "bounced",
        MailResult.FAILED: "failed"}


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An e-mail to send for a job, and the profile address it goes to."""

    email: Email
    user_id: str


class EmailSender:
    def __init__(self, pool: Pool, mailer: Mailer, settler: Settler, sending_log: Settler,
                 max_attempts: int, preferences_url: str | None,
                 wall_clock: Callable[[], float], rand: Callable[[], float],
                 unsubscribe: Callable[[str, str], str] | None = None):
        self._pool, self._mailer = pool, mailer
        self._settler, self._sending_log = settler, sending_log
        self._max_attempts = max_attempts
        self._preferences_url = preferences_url
        self._unsubscribe = unsubscribe  # (user id, type) -> its one-click URL
        self._wall_clock, self._rand = wall_clock, rand
        self._decisions = Decisions(pool, (CHANNEL,))
        self._logs: dict[int, JobLog] = {}
        self.settling: set[int] = set()  # jobs whose change is being written
        self.metrics = Recorder()  # the worker reports its outages here

    async def start(self, batch: Sequence[Claimed]) -> list[tuple[Claimed, Outgoing | None]]:
        """Each job of ``batch`` with its e-mail, or None when there is nothing to send
        (its fate is in its log). Run :meth:`finish` for every pair."""
        for c in batch:
            self._logs[c.id] = JobLog()
        try:
            return await self._start(batch)
        except BaseException:
            for c in batch:
                self._logs.pop(c.id, None)
            raise

    async def _start(self, batch: Sequence[Claimed]) -> list[tuple[Claimed, Outgoing | None]]:
        valid = [c for c in batch if c.job is not None]
        known, later, sendable = await self._decisions.judge(valid, self._wall_clock())
        for c in valid:
            if c.id in later:
                self._fate(c, later[c.id])
            elif c.id not in {d.job.id for d in sendable}:
                self._skip(c, f"type: {c.job.type if c.job else None} is not declared (any more)")
        going = [d.job for d in sendable]
        users = [c.job.user_id for c in going if c.job is not None]
        found = await profiles.addresses(self._pool, users) if users else {}
        going = [c for c in going if self._addressed(c, found)]
        wanted = [i for c in going for i in (c.digest_ids or [c.notification_id])]
        rows = await digests.contents(self._pool, wanted) if wanted else {}
        emails = {c.id: self._email(c, known, found, rows) for c in going}
        return [(c, emails.get(c.id)) for c in batch]

    def _fate(self, c: Claimed, d: Decided) -> None:
        job_log = self._logs[c.id]
        if d.record is not None:
            job_log.records.append(d.record)
        job_log.deferred, job_log.held = d.deferred, d.held

    def _skip(self, c: Claimed, detail: str) -> None:
        assert c.job is not None
        self._logs[c.id].records.append(Record(c.job.uid, c.job.user_id, CHANNEL, "skipped",
                                               None, detail, c.attempt))

    def _addressed(self, c: Claimed, found: Mapping[str, Any]) -> bool:
        assert c.job is not None
        profile = found.get(c.job.user_id)
        if profile is None:
            self._skip(c, "no address: the user has no profile")
        elif not profile["email"]:
            self._skip(c, "no address: the user's profile has no e-mail")
        elif profile["email_status"] == "bouncing":
            self._skip(c, f"bouncing: {profile['email']} bounced ({profile['email_bounce']});"
                          " saving another address clears it")
        else:
            return True
        return False

    def _email(self, c: Claimed, known: Mapping[str, TypeDefinition],
               found: Mapping[str, Any], rows: Mapping[int, dict[str, Any]]) -> Outgoing | None:
        assert c.job is not None and c.job.type is not None
        t, profile = known[c.job.type], found[c.job.user_id]
        one_click = (self._unsubscribe(c.job.user_id, c.job.type)
                     if self._unsubscribe is not None and not t.required else None)
        to = Recipient(profile["email"], profile["name"], self._preferences_url, c.attempt,
                       one_click)
        if c.digest_ids is None:
            row = rows.get(c.notification_id)
            if row is None:
                self._skip(c, "the notification was removed before the e-mail was due")
                return None
            return Outgoing(notification_email(t, row, to), c.job.user_id)
        unread = sorted((rows[i] for i in set(c.digest_ids) if i in rows and rows[i]["unread"]),
                        key=lambda r: r["seq"])
        if not unread:
            self._skip(c, "digest: all its notifications were read before it was due")
            return None
        if len(unread) == 1:
            return Outgoing(notification_email(t, unread[0], to), c.job.user_id)
        return Outgoing(digest_email(t, c.job.type, unread, to, c.job.user_id,
                                     f"digest-{c.id}"), c.job.user_id)

    async def finish(self, c: Claimed, out: Outgoing | None) -> None:
        """Send ``out`` (None: nothing to send), then settle the job with its log rows."""
        job_log = self._logs[c.id]
        try:
            if c.job is None:
                self.settling.add(c.id)
                await self._settler.dead(c.id, [], c.invalid or "not a valid job", job_log)
            elif out is None:
                self.settling.add(c.id)
                await self._settler.done(c.id, job_log)
            else:
                await self._send(c, out, job_log)
        finally:
            self._logs.pop(c.id, None)
            self.settling.discard(c.id)

    async def _send(self, c: Claimed, out: Outgoing, job_log: JobLog) -> None:
        assert c.job is not None
        name = self._mailer.name
        await self._sending_log.sending(Record(c.job.uid, c.job.user_id, name, "sending", None,
                                               None, c.attempt))
        try:
            outcome = await self._mailer.send(out.email)
        except Exception as exc:
            log.exception("mailer %s raised", name)
            outcome = MailOutcome.retry(retry_delay(c.attempt, self._rand()),
                                        f"mailer error: {exc!r}")
        job_log.records.append(Record(c.job.uid, c.job.user_id, name, _ROW[outcome.result],
                                      None, outcome.detail or None, c.attempt))
        self.settling.add(c.id)
        if outcome.result is MailResult.RETRY:
            if c.attempt >= self._max_attempts:
                job_log.records.append(Record(c.job.uid, c.job.user_id, name, "dead", None,
                                              f"gave up after {c.attempt} attempts", c.attempt))
                await self._settler.dead(c.id, [], outcome.detail, job_log)
            else:
                await self._settler.retry(c.id, [], outcome.after or 0.0, job_log)
            return
        if outcome.result is MailResult.BOUNCE:
            job_log.bounce = (out.user_id, out.email.to, outcome.detail)
        await self._settler.done(c.id, job_log)
