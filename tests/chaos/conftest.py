"""The chaos suite's short form: one private PostgreSQL for the session, the driver importable.

The driver lives in ``loadtest/chaos`` (its full form is ``python -m loadtest.chaos``);
the repository root goes on ``sys.path`` so pytest imports the same package.
Tests here carry the ``chaos`` marker: they run by default; ``-m "not chaos"``
leaves them out.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loadtest.chaos.cluster import private_postgres  # noqa: E402
from loadtest.chaos.servers import Postgres  # noqa: E402


@pytest.fixture(scope="session")
def chaos_dir() -> Iterator[Path]:
    """The suite's own folder (not pytest's, which another session may clean up meanwhile)."""
    folder = Path(tempfile.mkdtemp(prefix="tidings-chaos-"))
    folder.chmod(0o755)  # the PostgreSQL user (when run as root) must reach its data inside
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
async def chaos_pg(chaos_dir: Path) -> AsyncIterator[Postgres]:
    async with private_postgres(chaos_dir / "postgres") as pg:
        yield pg
