"""The migration runner: each file once, in order, under an advisory lock."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from tidings.store import inbox, migrate

from helpers import scratch_database


@pytest.fixture
async def scratch_db(database_url):
    async with scratch_database(database_url, "tidings_mig") as url:
        yield url


def test_files_are_numbered_in_order():
    found = migrate.load()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].name == "0001_init.sql"


async def test_concurrent_runners_apply_each_once(scratch_db):
    conns = [await asyncpg.connect(scratch_db) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate.apply(c) for c in conns))
        applied = [name for names in results for name in names]
        assert sorted(applied) == sorted(m.name for m in migrate.load())
        assert await migrate.apply(conns[0]) == []
        rows = await conns[0].fetch("SELECT version FROM tidings_migrations ORDER BY version")
        assert [r[0] for r in rows] == [m.version for m in migrate.load()]
    finally:
        for c in conns:
            await c.close()


async def test_failed_migration_rolls_back(scratch_db, tmp_path):
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE t_ok (x int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE t_bad (x int); SELECT nonsense;")
    conn = await asyncpg.connect(scratch_db)
    try:
        with pytest.raises(asyncpg.PostgresError):
            await migrate.apply(conn, migrate.load(tmp_path))
        assert await conn.fetchval("SELECT to_regclass('t_ok') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('t_bad') IS NULL")
        assert await conn.fetchval("SELECT max(version) FROM tidings_migrations") == 1
    finally:
        await conn.close()


async def test_list_query_uses_index_on_large_inbox(pool):
    """EXPLAIN of the list query on a user with 100k notifications: an index scan, no sort."""
    user = "explain-user"
    with pytest.raises(_Rollback):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO tidings_notifications (uid, user_id, seq, message)"
                " SELECT gen_random_uuid(), $1, g, 'm' FROM generate_series(1, 100000) g", user)
            await conn.execute("ANALYZE tidings_notifications")
            for is_read, before in ((None, False), (False, False), (True, False), (None, True)):
                args = [user, 20, 0] + ([50_000] if before else [])
                plan = "\n".join(r[0] for r in await conn.fetch(
                    "EXPLAIN " + inbox.page_sql(is_read, before), *args))
                assert "Index" in plan and "Sort" not in plan and "Seq Scan" not in plan, plan
            rows = await inbox.page(conn, user, limit=20, before=50_000)
            assert [r["seq"] for r in rows] == list(range(49_999, 49_979, -1))
            raise _Rollback


class _Rollback(Exception):
    pass
