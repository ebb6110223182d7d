"""Dependency health: which of PostgreSQL and Redis is down, said once per outage.

What may live here: the outage tracker and the mapping of a driver error that
escaped its edge to the project's :class:`~tidings.core.errors.Unavailable`.

Contracts:

- :meth:`Health.report` is called with every ``Unavailable`` seen while
  serving. The first report of a dependency that was up logs one WARNING
  ("... is unavailable") and starts probing it every ``interval`` seconds; the
  first probe that succeeds logs one INFO line ("... is available again after
  N s"). Reports during an outage log nothing: no line per request. Every
  report is counted (``tidings_dependency_errors_total``).
- :meth:`Health.check` probes every dependency now (``/readyz``) and names the
  ones that are down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from ..core.errors import BusUnavailable, Unavailable
from ..store.errors import translate_exception
from .metrics import Recorder

log = logging.getLogger(__name__)

NAMES = {"postgres": "PostgreSQL", "redis": "Redis"}
PROBE_TIMEOUT = 2.0

Probe = Callable[[], Awaitable[None]]


def unavailable(exc: BaseException) -> Unavailable | None:
    """The ``Unavailable`` of a driver error that was not translated at its edge, if any."""
    if isinstance(exc, Unavailable):
        return exc
    if type(exc).__module__.split(".")[0] == "redis":
        return BusUnavailable(f"Redis is unavailable ({type(exc).__name__})")
    mine = translate_exception(exc)
    return mine if isinstance(mine, Unavailable) else None


class Health:
    def __init__(self, probes: Mapping[str, Probe], *, interval: float = 1.0,
                 metrics: Recorder | None = None):
        self._probes = dict(probes)
        self._metrics = metrics or Recorder()
        self._interval = interval
        self._down: dict[str, float] = {}  # dependency -> loop time its outage began
        self._watchers: dict[str, asyncio.Task[None]] = {}

    def report(self, exc: Unavailable) -> None:
        """A call failed because ``exc.dependency`` is unavailable."""
        dep = exc.dependency
        if dep in self._probes:
            self._metrics.dependency_error(dep)
        if dep not in self._probes or dep in self._down:
            return
        self._down[dep] = asyncio.get_running_loop().time()
        log.warning("%s is unavailable (%s); what needs it is answered 503 until it is back",
                    NAMES.get(dep, dep), exc.message)
        if dep not in self._watchers:
            self._watchers[dep] = asyncio.create_task(self._watch(dep), name=f"watch-{dep}")

    def _back(self, dep: str) -> None:
        began = self._down.pop(dep, None)
        if began is not None:
            log.info("%s is available again after %.1f s", NAMES.get(dep, dep),
                     asyncio.get_running_loop().time() - began)

    async def _probe(self, dep: str) -> str:
        """"ok", or why ``dep`` did not answer."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await self._probes[dep]()
        except Unavailable as exc:
            return f"unavailable ({exc.message})"
        except TimeoutError:
            return f"unavailable (no answer within {PROBE_TIMEOUT:g} s)"
        return "ok"

    async def _watch(self, dep: str) -> None:
        try:
            while dep in self._down:
                await asyncio.sleep(self._interval)
                if await self._probe(dep) == "ok":
                    self._back(dep)
        finally:
            self._watchers.pop(dep, None)

    async def check(self) -> dict[str, str]:
        """Probe every dependency now: name -> "ok" or "unavailable (why)"."""
        names = list(self._probes)
        results = await asyncio.gather(*(self._probe(n) for n in names))
        for name, result in zip(names, results, strict=True):
            if result == "ok":
                self._back(name)
            else:
                self.report(_of(name, result))
        return dict(zip(names, results, strict=True))

    async def close(self) -> None:
        """Stop probing (at shutdown)."""
        for task in list(self._watchers.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _of(dep: str, why: str) -> Unavailable:
    exc = Unavailable(f"{NAMES.get(dep, dep)} is {why}")
    exc.dependency = dep
    return exc
