"""Fixtures of the e-mail tests: a self-signed certificate and fake SMTP servers.

``smtp_server`` starts a :class:`~fakes.fake_smtp.FakeSMTP` with the options a
test asks for and stops every one it started at the end of the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from fakes.fake_smtp import Certificate, FakeSMTP, make_certificate


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
async def smtp_server() -> AsyncIterator[Callable[..., Awaitable[FakeSMTP]]]:
    started: list[FakeSMTP] = []

    async def start(**options: Any) -> FakeSMTP:
        fake = FakeSMTP(**options)
        started.append(fake)
        return await fake.start()

    yield start
    for fake in started:
        await fake.stop()
