"""The verdict of one run, from facts only: what the database holds, what each socket got.

Pure functions, no I/O. Per socket the expected seqs are the user's stored
(``ACTIVE``) seqs: every socket is open before the first publish, so it must
receive each of them exactly once, in increasing order. ``duplicates`` counts
seqs received again, ``out_of_order`` seqs received for the first time after a
higher one, ``lost`` stored seqs never received, ``unexpected`` seqs received
that no stored notification of the user has. A publish answered with an error
(any status outside 2xx) must not be stored; an acknowledged one must name every
recipient, each stored under the very (user, seq, uid) the answer named.
``recovery`` is the time from the end of the fault to the first socket delivery
of a notification published after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .producer import Publish


@dataclass
class Figures:
    runs: int = 1
    sockets: int = 0
    acknowledged: int = 0
    delivered: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    lost: int = 0
    unexpected: int = 0  # seqs a socket got that the user has no stored row for
    resets: int = 0
    counts_wrong: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # status -> publishes
    error_stored: int = 0  # answered with an error, stored all the same
    acked_not_stored: int = 0
    recovery: list[float] = field(default_factory=list)  # seconds, one per run
    push: Counter[str] = field(default_factory=Counter)  # push scenarios' figures
    notes: list[str] = field(default_factory=list)

    def add(self, other: Figures) -> Figures:
        for name in ("runs", "sockets", "acknowledged", "delivered", "duplicates",
                     "out_of_order", "lost", "unexpected", "resets", "counts_wrong",
                     "error_stored", "acked_not_stored"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors += other.errors
        self.push += other.push
        self.recovery += other.recovery
        self.notes += other.notes
        return self


def socket_figures(received: Iterable[int], expected: Iterable[int]) -> tuple[int, int, int, int]:
    """(delivered, duplicates, out of order, lost) of one socket's arrivals."""
    seen: set[int] = set()
    top = 0
    duplicates = out_of_order = 0
    for seq in received:
        if seq in seen:
            duplicates += 1
            continue
        seen.add(seq)
        if seq < top:
            out_of_order += 1
        top = max(top, seq)
    want = set(expected)
    return len(seen & want), duplicates, out_of_order, len(want - seen)


def first_fault(received: list[int]) -> str | None:
    """The arrivals around the first duplicate or backward seq of a socket, for the notes."""
    top = 0
    seen: set[int] = set()
    for i, seq in enumerate(received):
        if seq in seen or seq < top:
            return " ".join(map(str, received[max(0, i - 6):i + 4]))
        seen.add(seq)
        top = max(top, seq)
    return None


def judge(publishes: list[Publish], stored: Mapping[str, Mapping[int, str]],
          stored_messages: set[str], sockets: Iterable[tuple[str, list[int], object]],
          final_counts: Mapping[str, object], arrivals: Iterable[tuple[str, int, float]],
          fault_end: float | None) -> Figures:
    """Figures of one run. ``stored``: user -> {seq: uid} of the stored rows;
    ``sockets``: (user, seqs in arrival order, last counts told);
    ``arrivals``: (user, seq, time) of every socket delivery, for the recovery time."""
    f = Figures()
    for pub in publishes:
        if pub.ok:
            f.acknowledged += len(pub.acked)
            f.acked_not_stored += sum(stored.get(u, {}).get(seq) != uid
                                      for u, seq, uid in pub.acked)
            f.acked_not_stored += len(set(pub.users).difference(u for u, _, _ in pub.acked))
        else:
            f.errors[str(pub.status)] += 1
            if pub.error_answer and pub.message in stored_messages:
                f.error_stored += 1
    for user, received, counts in sockets:
        f.sockets += 1
        mine = stored.get(user, {})
        delivered, dup, ooo, lost = socket_figures(received, mine)
        f.delivered += delivered
        f.duplicates += dup
        f.out_of_order += ooo
        f.lost += lost
        f.unexpected += len(set(received).difference(mine))
        f.counts_wrong += counts != final_counts.get(user)
        example = (dup or ooo) and first_fault(received)
        if example and not any(n.startswith("arrivals") for n in f.notes):
            f.notes.append(f"arrivals on one socket of {user}: {example}")
    if fault_end is not None:
        sent_at = {(u, seq): p.sent for p in publishes if p.ok for u, seq, _ in p.acked}
        after = [t for u, seq, t in arrivals if sent_at.get((u, seq), -1.0) >= fault_end]
        if after:
            f.recovery.append(max(0.0, min(after) - fault_end))
    return f


def failures(f: Figures, *, allowed_errors: Iterable[str] = ()) -> list[str]:
    """What broke the contract in ``f`` (empty: the run passed)."""
    out = [f"{name.replace('_', ' ')}: {getattr(f, name)}" for name in (
        "duplicates", "out_of_order", "lost", "unexpected", "counts_wrong", "error_stored",
        "acked_not_stored") if getattr(f, name)]
    allowed = {"timeout", "connection", "no node", *allowed_errors}
    bad = {k: v for k, v in f.errors.items() if k not in allowed}
    if bad:
        out.append(f"error answers {dict(sorted(bad.items()))}")
    for name in ("missing", "duplicates over bound", "without collapse id",
                 "not in delivery log", "slower than takeover bound"):
        if f.push[name]:
            out.append(f"push {name}: {f.push[name]}")
    if f.acknowledged == 0:
        out.append("nothing was acknowledged")
    return out
