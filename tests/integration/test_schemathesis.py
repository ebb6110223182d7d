"""The API description is the test: Schemathesis runs every check against a real node.

The node serves the document it is tested against (``/api/v1/openapi.json``),
over real sockets to the suite's PostgreSQL and Redis. Each operation gets at
least 100 generated cases (valid and invalid) with every check Schemathesis
has (no 5xx, status codes, response schemas and headers, content types,
ignored auth, negative data rejected, positive data accepted, ...); then the
stateful run follows the document's links (a registered device to its
get/put/delete, an inbox page to its notifications, a publish to its
deliveries). User operations carry a user token, producer operations the API
key, admin operations the admin key. The node runs in its own thread and loop,
as Schemathesis calls it synchronously. Marked ``schemathesis`` so CI can run it once (``-m``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from schemathesis.config import SchemathesisConfig

from tidings import config
from tidings.api.openapi import document

from helpers import ADMIN_KEY, API_KEY, PRODUCER, new_user, serve_node, token

pytestmark = [pytest.mark.schemathesis, pytest.mark.timeout(600)]

USER = new_user("st")
USER_TOKEN = token(USER, ttl=3600)
#: Each operation's credential comes from the security scheme it declares.
CONFIG = SchemathesisConfig.from_dict({"auth": {"openapi": {
    "userJWT": {"bearer": USER_TOKEN}, "apiKey": {"bearer": API_KEY},
    "adminKey": {"bearer": ADMIN_KEY}}}})
EXAMPLES = 100
STATEFUL_STEPS = 600  # steps of linked scenarios, over at most MAX_RUNS runs
MAX_RUNS = 20
#: The socket endpoint upgrades to a WebSocket: its protocol is tested in tests/realtime.
SKIPPED = "/ws/me/notifications"


class ThreadedNode:
    """A node served by its own event loop in a thread; ``url`` once started."""

    def __init__(self, settings: config.Settings):
        self.settings = settings
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve_node(self.settings) as node:
            self.url = node.url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> ThreadedNode:
        self._thread.start()
        assert self._ready.wait(60), "the node did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def st_node(settings: config.Settings) -> Iterator[ThreadedNode]:
    """A node in dev mode (dev tokens are tested too) without the per-user rate limit
    (the run is one user's flood of requests), with an admin key (``/metrics``)."""
    with ThreadedNode(replace(settings, rate_limit_user=0.0, dev=True,
                              admin_keys=(ADMIN_KEY,))) as node:
        for i in range(3):  # an inbox to page through and link from
            r = requests.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                              json={"recipients": [USER], "message": f"seed {i}"}, timeout=10)
            assert r.status_code == 201, r.text
        yield node


# The document the node serves (test_served_document_is_the_tested_one): built here so
# that the cases can be generated when the tests are collected.
schema = schemathesis.openapi.from_dict(document(), config=CONFIG).exclude(path=SKIPPED)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_every_operation(case: schemathesis.Case, st_node: ThreadedNode) -> None:
    case.call_and_validate(base_url=st_node.url, timeout=30)


def test_links_stateful(st_node: ThreadedNode) -> None:
    """Sequences along the links; every response of every step is checked."""
    failures: list[str] = []
    steps: collections.Counter[str] = collections.Counter()

    class Run(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
            return {"base_url": st_node.url, "timeout": 30}

        def validate_response(self, response: object, case: schemathesis.Case,
                              *args: object, **kwargs: object) -> None:
            steps[f"{case.operation.label} {response.status_code}"] += 1  # type: ignore[attr-defined]
            try:
                super().validate_response(response, case, *args, **kwargs)
            except Exception as exc:
                failures.append(f"{case.operation.label}: {exc}")
                raise

    # Generation only, as Schemathesis's own runner does. The server's state moves on
    # between scenarios (a device once registered answers 200, not 201), so Hypothesis
    # may find a scenario's rule choices no longer replay and stop a run with Flaky:
    # like Schemathesis's runner, judge by the failures recorded, and run again (a new
    # seed) until the steps add up.
    for _ in range(MAX_RUNS):
        with contextlib.suppress(Flaky):
            Run.run(settings=settings(max_examples=EXAMPLES, deadline=None,
                                      stateful_step_count=6, phases=[Phase.generate],
                                      database=None, suppress_health_check=list(HealthCheck)))
        if failures or sum(steps.values()) >= STATEFUL_STEPS:
            break
    assert not failures, "\n\n".join(failures)
    linked = {label for label in steps if "{" in label and (" 200" in label or " 204" in label)}
    assert sum(steps.values()) >= STATEFUL_STEPS and linked, steps


def test_served_document_is_the_tested_one(st_node: ThreadedNode) -> None:
    served = requests.get(f"{st_node.url}/api/v1/openapi.json", timeout=10)
    assert served.status_code == 200 and served.json() == document()


def test_document_states_the_limits() -> None:
    doc = document()
    limits = doc["info"]["description"]
    for text in ("32 levels", "64-bit", "control characters", "page_size 1 to 100",
                 "page 1 to 1000000", "APNs", "FCM", "16384 bytes"):
        assert text in limits, text
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (method, path)
            for status, answer in op["responses"].items():
                if "$ref" in answer or status in ("101", "204"):
                    continue
                assert answer.get("content"), (method, path, status, "no body schema")
