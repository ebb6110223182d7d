"""The store's statements on a young database: plans that read tables through indexes.

A connection keeps a statement's generic plan, made on the table sizes of the moment;
one made on a small table must not read the whole table once it has grown.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tidings.core.errors import StoreError
from tidings.store import db, outbox
from tidings.store import publish as store

from helpers import new_user


@pytest.fixture
async def generic(own_database: str):
    """A pool of one connection of the module's young database, on generic plans only."""
    pool = await db.create_pool(own_database, max_size=1)
    await pool.execute("SET plan_cache_mode = force_generic_plan")
    yield pool
    await pool.close()


async def table_stats(pool, table: str) -> tuple[int, int]:
    """(sequential scans, rows inserted) of ``table``, as the statistics have them."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await conn.fetchrow(
            "SELECT seq_scan, n_tup_ins FROM pg_stat_user_tables WHERE relname = $1", table)
    return row[0], row[1]


async def notifications_stats(publisher, pool, inserted: int) -> tuple[int, int]:
    """The notifications table's (sequential scans, rows inserted) once ``publisher``'s
    counts are flushed and reach ``inserted`` (they arrive once its backend is idle)."""
    await publisher.execute("SELECT pg_stat_force_next_flush()")
    for _ in range(50):
        stats = await table_stats(pool, "tidings_notifications")
        if stats[1] >= inserted:
            break
        await asyncio.sleep(0.05)
    return stats


async def test_publish_reads_no_notifications_table_by_a_scan(generic, own_pool):
    scans, inserted = await table_stats(own_pool, "tidings_notifications")
    users = [new_user("plan") for _ in range(3)]
    for _ in range(8):  # past the five custom plans of a prepared statement
        drafts = [store.Draft([u], [str(uuid.uuid4())], {"message": "m"}, None) for u in users]
        await store.publish(generic, store.prepare(drafts))
    assert await notifications_stats(generic, own_pool, inserted + 24) == (scans,
                                                                           inserted + 24)


async def test_a_first_attempt_inside_a_transaction_reads_no_notifications_by_a_scan(
        generic, own_pool):
    """A keyed publish and a stream's first chunk store inside a transaction, told the
    uids are new: the same plans as outside one."""
    scans, inserted = await table_stats(own_pool, "tidings_notifications")
    user = new_user("plan")
    for _ in range(8):
        prepared = store.prepare([store.Draft([user], [str(uuid.uuid4())], {"message": "m"},
                                              None)])
        async with generic.acquire() as conn, conn.transaction():
            await store.publish(conn, prepared, new=True)
    assert await notifications_stats(generic, own_pool, inserted + 8) == (scans, inserted + 8)


async def test_a_stored_uid_told_new_inside_a_transaction_is_refused(own_pool):
    prepared = store.prepare([store.Draft([new_user("plan")], [str(uuid.uuid4())],
                                          {"message": "m"}, None)])
    await store.publish(own_pool, prepared)
    async with own_pool.acquire() as conn:
        with pytest.raises(StoreError):
            async with conn.transaction():
                await store.publish(conn, prepared, new=True)
        # without the word, the same transaction reads the stored row back
        async with conn.transaction():
            [again] = await store.publish(conn, prepared)
    assert again.outbox_id == 0 and again.rows[0].seq is not None


async def test_a_retry_outside_a_transaction_reads_the_stored_rows_back(own_pool):
    users = [new_user("plan") for _ in range(2)]
    prepared = store.prepare([store.Draft(users, [str(uuid.uuid4()) for _ in users],
                                          {"message": "m"}, None)])
    [first] = await store.publish(own_pool, prepared)
    [again] = await store.publish(own_pool, prepared)  # its first try fails on the uids
    assert again.rows == [r._replace(total=None, unread=None, version=None)
                          for r in first.rows]
    assert again.outbox_id == 0
    assert await own_pool.fetchval(
        "SELECT count(*) FROM tidings_notifications WHERE user_id = ANY($1)", users) == 2


async def test_the_outbox_has_only_its_primary_key_and_the_relay_reads_it(own_pool):
    indexes = await own_pool.fetch(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'tidings_outbox'")
    assert [r[0] for r in indexes] == ["tidings_outbox_pkey"]
    async with own_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "INSERT INTO tidings_outbox (notification_ids, created_at) SELECT ARRAY[g],"
                " now() - make_interval(secs => g) FROM generate_series(1, 2000) g")
            await conn.execute("ANALYZE tidings_outbox")
            plan = "\n".join(r[0] for r in await conn.fetch(
                "EXPLAIN SELECT id FROM tidings_outbox WHERE created_at < now()"
                " - make_interval(secs => 2) ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED"))
            assert "Index Scan using tidings_outbox_pkey" in plan, plan
            stale = await outbox.claim_stale(conn, 2.0, 100)
            assert len(stale) == 100 and all(r["age"] > 2 for r in stale)
        finally:
            await tx.rollback()
