"""Send-time channel decisions of a push worker: preferences, quiet hours, digests, templates.

What may live here: what happens to claimed jobs of declared types between the
claim and the sends. The rule itself is :func:`tidings.core.channel_policy.decide`;
this module reads what it needs (the types, the users' choices and timezones,
the notifications a digest covers) and carries its answer out.

Contracts, per job whose notification has a declared type (others are sent as
before types existed, with no query):

- A push job is decided for two channels: ``push`` (its APNs and FCM devices)
  and ``web_push`` (its browser devices). When one is skipped and the other is
  not, the job goes on with :attr:`Decided.off` naming the skipped channel and
  why (the sender skips those devices, a row each); when both are, the job is
  skipped. (The other decisions do not depend on the channel.) An e-mail job is
  decided for ``email`` (:meth:`Decisions.judge`, rendered by
  :mod:`.email_send`).

- The type, the user's choices and timezone are read when the job is sent, not
  when it was published: a preference changed in between is honoured.
- Skipped (the user turned the channel off): a 'skipped' row whose detail starts
  with ``preference``; the job is done.
- Inside quiet hours: a 'skipped' row whose detail starts with ``quiet hours``
  and the job due again when they end (in the user's timezone; UTC without one).
- Held for a digest: a 'digested' row; the job joins its user's open digest of
  the type, or opens one due after the window (:mod:`tidings.store.digests`).
- A digest that comes due sends once: nothing if all its notifications were read
  or removed meanwhile (a 'skipped' row), the notification itself if one is left,
  else one push counting them (the type's ``digest_title``/``digest_body``
  templates, by default its title and "N new <title>").
- A type's push templates give the title and body; a template that fails on a
  notification falls back to the notification's own text (never a failed send).
  Browser devices get their own rendering (:attr:`Decided.web`) when the type has
  ``web_push`` templates: each field from its ``web_push`` template, else (none, or
  it fails on the notification) its ``push`` template, else the notification's text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from functools import partial
from typing import Any

from ..core import templates
from ..core.channel_policy import Decision, Defer, Digest, Send, Skip, decide
from ..core.preferences import parse_choices
from ..core.push import PushJob
from ..core.typedefs import PushTemplates, TypeDefinition
from ..services.profiles import zone
from ..services.types import parse_stored
from ..store import digests, preferences, profiles
from ..store import types as stored_types
from ..store.delivery_log import Record
from ..store.digests import Hold
from ..store.push_jobs import Claimed, Pool

#: The channels of the push jobs' devices: mobile (APNs, FCM) first, then browsers.
PUSH_CHANNELS = ("push", "web_push")


def device_channel(platform: str) -> str:
    """The preference channel a device's sends follow."""
    return "web_push" if platform == "webpush" else "push"


@dataclass(frozen=True, slots=True)
class Decided:
    """One job's fate: send ``job`` (its content as rendered), or not, with a log row; a
    job not sent may be ``deferred`` (unix seconds) or ``held`` for a digest. ``off``: the
    channels of the job not to send to, each with the log detail why; ``web``: the content
    for browser devices when the type's ``web_push`` templates render it apart."""

    job: Claimed
    send: bool = True
    record: Record | None = None
    deferred: float | None = None
    held: Hold | None = None
    off: Mapping[str, str] | None = None
    web: PushJob | None = None


def resume_at(now: float, tz: tzinfo, minute: int) -> float:
    """The first instant after ``now`` when the wall clock of ``tz`` reads ``minute``
    (of the day); on a day that skips it (a DST jump), the same minute after the jump."""
    local = datetime.fromtimestamp(now, tz)
    at = local.replace(hour=minute // 60, minute=minute % 60, second=0, microsecond=0)
    if at <= local:
        at = (at.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
    return max(at.timestamp(), now)


def local_minute(now: float, tz: tzinfo) -> int:
    local = datetime.fromtimestamp(now, tz)
    return local.hour * 60 + local.minute


def _skipped(kind: str, channel: str, d: Skip) -> str:
    return (f"preference: the user turned {channel} off for {kind}"
            if d.reason == "preference" else f"type: {kind} does not use {channel}")


class Decisions:
    """The send-time decisions of one worker's jobs: those of the job channel
    ``channels[0]`` (the jobs' ``channel``, its digests' key), by each of ``channels``."""

    def __init__(self, pool: Pool, channels: Sequence[str] = PUSH_CHANNELS):
        self._pool = pool
        self._channels = tuple(channels)
        self._channel = self._channels[0]

    async def decide(self, batch: Sequence[Claimed], now: float) -> list[Decided]:
        """The fate of each push job of ``batch`` (valid jobs, in order), its content
        rendered from the type's push templates."""
        known, out, sendable = await self.judge(batch, now)
        out |= await self._rendered([d.job for d in sendable], known, {
            d.job.id: d.off for d in sendable})
        return [out.get(c.id, Decided(c)) for c in batch]

    async def judge(self, batch: Sequence[Claimed], now: float
                    ) -> tuple[Mapping[str, TypeDefinition], dict[int, Decided], list[Decided]]:
        """The declared types of ``batch``; the fate of each typed job not to be sent now
        (by job id); and the typed jobs to send now (with their channels ``off``). A job
        of no declared type is in neither."""
        names = {c.job.type for c in batch if c.job is not None and c.job.type}
        known = parse_stored(await stored_types.some(self._pool, sorted(names))) if names else {}
        typed = [c for c in batch if c.job is not None and c.job.type in known]
        if not typed:
            return known, {}, []
        users = sorted({c.job.user_id for c in typed if c.job is not None})
        choices = await preferences.of_users(self._pool, users)
        zones = await profiles.timezones(self._pool, users)
        out: dict[int, Decided] = {}
        sendable: list[Decided] = []
        for c in typed:
            assert c.job is not None and c.job.type is not None
            tz = zone(zones.get(c.job.user_id))
            chosen = parse_choices(choices.get(c.job.user_id))
            minute = local_minute(now, tz)
            each = {ch: decide(ch, c.job.type, known, chosen, minute,
                               digest_due=c.digest_ids is not None) for ch in self._channels}
            off = {ch: _skipped(c.job.type, ch, d) for ch, d in each.items()
                   if isinstance(d, Skip)}
            going = [d for d in each.values() if not isinstance(d, Skip)]
            if not going:
                out[c.id] = self._all_off(c, each)
            elif isinstance(going[0], Send):
                sendable.append(Decided(c, off=off or None))
            else:
                out[c.id] = self._not_now(c, going[0], now, tz)
        return known, out, sendable

    def _all_off(self, c: Claimed, each: Mapping[str, Decision]) -> Decided:
        """Skipped on every channel: the log names those the user turned off, else the
        job's own channel."""
        kind = c.job.type if c.job is not None and c.job.type else ""
        turned = [ch for ch, d in each.items() if isinstance(d, Skip) and d.reason == "preference"]
        if turned:
            detail = f"preference: the user turned {' and '.join(turned)} off for {kind}"
        else:
            detail = f"type: {kind} does not use {' or '.join(each)}"
        return Decided(c, False, _row(c, self._channel, "skipped", detail))

    def _not_now(self, c: Claimed, d: Defer | Digest, now: float, tz: tzinfo) -> Decided:
        assert c.job is not None
        job, kind, channel = c.job, c.job.type or "", self._channel
        if isinstance(d, Defer):
            until = resume_at(now, tz, d.resume_minute)
            at = datetime.fromtimestamp(until, UTC).isoformat().replace("+00:00", "Z")
            return Decided(c, False, _row(c, channel, "skipped",
                                          f"quiet hours: deferred until {at}"), deferred=until)
        hold = Hold(c.id, c.notification_id, job.user_id, kind, channel, d.window)
        return Decided(c, False, _row(c, channel, "digested", f"held for the {kind} digest"
                                                              f" ({d.window:g} s window)"),
                       held=hold)

    async def _rendered(self, batch: Sequence[Claimed], known: Mapping[str, TypeDefinition],
                        off: Mapping[int, Mapping[str, str] | None]) -> dict[int, Decided]:
        """Each job of ``batch`` with its content from the type's templates (a digest: its
        notifications still unread)."""
        wanted = [i for c in batch if c.digest_ids is not None for i in c.digest_ids]
        wanted += [c.notification_id for c in batch if c.digest_ids is None and _templated(
            known[c.job.type] if c.job and c.job.type else None)]
        rows = await digests.contents(self._pool, wanted) if wanted else {}
        out: dict[int, Decided] = {}
        for c in batch:
            assert c.job is not None and c.job.type is not None
            t = known[c.job.type]
            if c.digest_ids is None:
                row = rows.get(c.notification_id)
                out[c.id] = _both(c, t, partial(_render, c.job, t, row), off.get(c.id))
                continue
            unread = sorted((rows[i] for i in set(c.digest_ids) if i in rows and rows[i]["unread"]),
                            key=lambda r: r["seq"])
            if not unread:
                out[c.id] = Decided(c, False, _row(
                    c, self._channel, "skipped",
                    "digest: all its notifications were read before it was due"))
            elif len(unread) == 1:
                one = unread[0]
                job = PushJob(uid=one["uid"], user_id=one["user_id"], message=one["message"],
                              seq=one["seq"], title=one["title"], type=one["type"],
                              data=one["data"], push=c.job.push)
                out[c.id] = _both(c, t, partial(_render, job, t, one), off.get(c.id))
            else:
                out[c.id] = _both(c, t, partial(_digest, c.job, t, unread), off.get(c.id))
        return out


def _row(c: Claimed, channel: str, outcome: str, detail: str) -> Record:
    assert c.job is not None
    return Record(c.job.uid, c.job.user_id, channel, outcome, None, detail, c.attempt)


def _both(c: Claimed, t: TypeDefinition,
          render: Callable[[Sequence[PushTemplates]], PushJob],
          off: Mapping[str, str] | None) -> Decided:
    """``c`` to send, its content rendered by ``render`` from the type's ``push`` templates,
    and apart for browsers (``web``) when the type has ``web_push`` templates."""
    push = [t.templates.push] if t.templates.push is not None else []
    web = (render([t.templates.web_push, *push]) if t.templates.web_push is not None
           else None)
    return Decided(replace(c, job=render(push)), off=off, web=web)


def _templated(t: TypeDefinition | None) -> bool:
    return t is not None and any(
        p is not None and (p.title is not None or p.body is not None)
        for p in (t.templates.push, t.templates.web_push))


def _first(sources: Sequence[str | None], ctx: Mapping[str, Any]) -> str | None:
    """What the first of ``sources`` that is a template and does not fail renders on ``ctx``."""
    for source in sources:
        text = templates.render(source, ctx)
        if text is not None:
            return text
    return None


def _render(job: PushJob, t: TypeDefinition, row: Mapping[str, Any] | None,
            groups: Sequence[PushTemplates]) -> PushJob:
    """``job`` with the title and body of the first of ``groups`` whose template renders
    (a body rendering empty is the notification's message); ``row`` None: ``job`` itself."""
    if not groups or row is None:
        return job
    ctx = templates.notification_context(row, t.title)
    title = _first([p.title for p in groups], ctx)
    body = _first([p.body for p in groups], ctx)
    return PushJob(uid=job.uid, user_id=job.user_id, seq=job.seq, type=job.type, data=job.data,
                   push=job.push, title=job.title if title is None else title,
                   message=job.message if not body else body)


def _digest(job: PushJob, t: TypeDefinition, unread: Sequence[Mapping[str, Any]],
            groups: Sequence[PushTemplates]) -> PushJob:
    ctx = {"count": len(unread), "type": job.type, "type_title": t.title,
           "recipient": job.user_id,
           "notifications": [templates.notification_context(r, t.title) for r in unread]}
    title = _first([p.digest_title for p in groups], ctx)
    body = _first([p.digest_body for p in groups], ctx)
    return PushJob(
        uid=job.uid, user_id=job.user_id, type=job.type, push=job.push,
        title=t.title if title is None else title,
        message=body or f"{len(unread)} new {t.title.lower()}",
        data={"digest": {"count": len(unread), "uids": [r["uid"] for r in unread]}})
