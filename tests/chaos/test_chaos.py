"""Every chaos scenario, briefly (the short form of ``python -m loadtest.chaos``).

Each test starts its own cluster (a fresh database on the session's private
PostgreSQL, its own Redis, three node processes, push workers where needed),
runs the numbered stream through the scenario's fault and asserts the contract:
every stored seq once and in order on every socket, counts right, no error
answer stored, no 5xx but 503 during an outage, every owed push sent once (or
within the in-flight bound after a crash) with its collapse id and logged.
"""

from __future__ import annotations

import pytest
from loadtest.chaos.run import SHORT
from loadtest.chaos.scenarios import SCENARIOS, Scenario

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(120)]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
async def test_scenario(scenario: Scenario, chaos_pg, chaos_dir):
    figures = await scenario.run(chaos_dir / scenario.name, chaos_pg, SHORT)
    wrong = scenario.failures(figures)
    assert not wrong, f"{scenario.name}: {'; '.join(wrong)}\n{figures}"
    assert figures.sockets or figures.push["owed"], "the run exercised nothing"
