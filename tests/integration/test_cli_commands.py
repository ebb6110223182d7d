"""`tidings push`, `tidings listen`, `tidings devices add` and `tidings worker --burst` against
a running node."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from fakes.fake_webpush import Browser
from helpers import API_KEY, JWT_SECRET, PRODUCER, new_user, scratch_database, user_headers


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    env.update(extra)
    return env


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tidings", *args], env=_env(**env),
                          capture_output=True, text=True, timeout=60)


async def test_push_command_publishes_with_push_options(node, pool):
    user = new_user("cli")
    result = await asyncio.to_thread(
        _run, "push", "--url", node.url, "--api-key", API_KEY, "--user", user,
        "--message", "from the shell", "--badge", "3", "--sound", "ding",
        "--extra", '{"deep": "/x"}')
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["created"] == 1 and body["notifications"][0]["recipient"] == user
    row = await pool.fetchrow(
        "SELECT o.push FROM tidings_notifications n, tidings_outbox o"
        " WHERE n.user_id = $1 AND n.id = ANY(o.notification_ids)", user)
    if row is not None:  # normally deleted at once; check it while it is there
        assert row["push"]["badge"] == 3
    bad = await asyncio.to_thread(_run, "push", "--url", node.url, "--api-key", "wrong",
                                  "--user", user, "--message", "x")
    assert bad.returncode == 1 and "401" in bad.stderr
    bad = await asyncio.to_thread(_run, "push", "--url", node.url, "--api-key", API_KEY,
                                  "--user", user, "--message", "x", "--extra", "{nope")
    assert bad.returncode == 2 and "--extra" in bad.stderr


async def test_listen_command_prints_live_notifications(node, http):
    user = new_user("listen")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tidings", "listen", "--url", node.url, "--user", user,
        env=_env(TIDINGS_JWT_SECRET=JWT_SECRET), stdout=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(30):
            first = json.loads(await proc.stdout.readline())
            assert first["type"] == "counts"
            async with http.post(f"{node.url}/api/v1/notifications", headers=PRODUCER,
                                 json={"recipients": [user], "message": "heard"}) as r:
                assert r.status == 201
            second = json.loads(await proc.stdout.readline())
        assert second["notification"]["notification"]["message"] == "heard"
    finally:
        proc.terminate()
        await proc.wait()


async def test_worker_burst_sends_due_pushes(database_url):
    """On a database of its own: the nodes of other tests run push workers too."""
    import secrets
    import uuid

    from tidings.store import db, migrate, outbox, push_jobs
    from tidings.store import publish as store

    user, token = new_user("worker"), secrets.token_hex(32)
    async with scratch_database(database_url, "tidings_cli_worker") as url:
        pool = await db.create_pool(url, min_size=1, max_size=2)
        try:
            async with pool.acquire() as conn:
                await migrate.apply(conn)
            await pool.execute("INSERT INTO tidings_devices (user_id, platform, token)"
                               " VALUES ($1, 'apns', $2)", user, token)
            async with pool.acquire() as conn, conn.transaction():
                [stored] = await store.publish(conn, store.prepare([store.Draft(
                    [user], [str(uuid.uuid4())], {"message": "to the phone"}, {"when": "always"})]))
                await outbox.retire(conn, {stored.outbox_id: [push_jobs.OwedPush(
                    {"when": "always"}, [stored.rows[0]["id"]])]})
            env = {"TIDINGS_DATABASE_URL": url}  # no Redis: no throttle, nothing else lost
            result = await asyncio.to_thread(_run, "worker", "--burst", **env)
            assert result.returncode == 0, result.stderr
            assert "Ctrl-C" not in result.stdout  # a burst stops by itself
            printed = [json.loads(line) for line in result.stdout.splitlines()
                       if line.startswith("{")]
            assert [p["payload"]["aps"]["alert"]["body"] for p in printed] == ["to the phone"]
            outcomes = await pool.fetch(
                "SELECT outcome FROM tidings_deliveries WHERE notification_uid = $1 ORDER BY id",
                uuid.UUID(stored.draft.uids[0]))
            assert [r[0] for r in outcomes] == ["sending", "pushed"]
            assert await pool.fetchval("SELECT count(*) FROM tidings_push_jobs") == 0
        finally:
            await pool.close()
    result = await asyncio.to_thread(_run, "worker", "--burst")
    assert result.returncode == 2 and "TIDINGS_DATABASE_URL" in result.stderr


async def test_worker_serves_its_metrics_on_the_metrics_port(database_url):
    """``tidings worker`` with TIDINGS_METRICS_PORT: its sends and the queue, without a key."""
    import signal
    import uuid

    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    from tidings.embedded import free_port
    from tidings.store import db, migrate, outbox, push_jobs
    from tidings.store import publish as store

    user, port = new_user("wmetrics"), free_port()
    async with scratch_database(database_url, "tidings_cli_wmetrics") as url:
        pool = await db.create_pool(url, min_size=1, max_size=2)
        proc = None
        try:
            async with pool.acquire() as conn:
                await migrate.apply(conn)
            await pool.execute("INSERT INTO tidings_devices (user_id, platform, token)"
                               " VALUES ($1, 'apns', $2)", user, "ab" * 32)
            async with pool.acquire() as conn, conn.transaction():
                [stored] = await store.publish(conn, store.prepare([store.Draft(
                    [user], [str(uuid.uuid4())], {"message": "m"}, {"when": "always"})]))
                await outbox.retire(conn, {stored.outbox_id: [push_jobs.OwedPush(
                    {"when": "always"}, [stored.rows[0]["id"]])]})
            proc = subprocess.Popen(
                [sys.executable, "-m", "tidings", "worker"], stdout=subprocess.DEVNULL,
                env=_env(TIDINGS_DATABASE_URL=url, TIDINGS_METRICS_PORT=str(port)))

            def sample(text: str, name: str, **labels: str) -> float | None:
                return next((s.value for f in text_string_to_metric_families(text)
                             for s in f.samples if s.name == name and s.labels == labels), None)

            async with aiohttp.ClientSession() as http, asyncio.timeout(60):
                while True:
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                            text = await r.text()
                    except aiohttp.ClientError:
                        text = ""
                    if sample(text, "tidings_push_sends_total", provider="console",
                              outcome="delivered") == 1 and sample(
                            text, "tidings_push_queue_depth") == 0:
                        break
                    await asyncio.sleep(0.2)
            assert sample(text, "tidings_push_send_duration_seconds_count",
                          provider="console") == 1
            assert sample(text, "tidings_sockets_open") == 0, "a worker holds no socket"
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                assert await asyncio.to_thread(proc.wait, 30) == 0
            await pool.close()


async def test_migrate_command_applies_once(database_url):
    async with scratch_database(database_url, "tidings_cli") as url:
        first = await asyncio.to_thread(_run, "migrate", "--database-url", url)
        assert first.returncode == 0, first.stderr
        assert "applied 0001_init.sql" in first.stdout
        again = await asyncio.to_thread(_run, "migrate", "--database-url", url)
        assert again.stdout.strip() == "schema is up to date"


async def test_devices_add_registers_a_browser_subscription_inline_or_from_a_file(
        node, http, tmp_path):
    user = new_user("cliwp")
    inline = Browser("https://fcm.googleapis.com/fcm/send/cli-inline")
    from_file = Browser("https://fcm.googleapis.com/fcm/send/cli-file")
    sub_file = tmp_path / "sub.json"
    sub_file.write_text(json.dumps(from_file.subscription()))
    secret = {"TIDINGS_JWT_SECRET": JWT_SECRET}
    common = ("devices", "add", "--url", node.url, "--user", user, "--platform", "webpush")

    one = await asyncio.to_thread(_run, *common, "--subscription",
                                  json.dumps(inline.subscription()), **secret)
    assert one.returncode == 0, one.stderr
    answer = json.loads(one.stdout)
    assert (answer["platform"], answer["endpoint"]) == ("webpush", inline.endpoint)
    assert answer["token"].startswith("webpush-")
    two = await asyncio.to_thread(_run, *common, "--subscription", f"@{sub_file}",
                                  "--name", "Firefox", **secret)
    assert two.returncode == 0, two.stderr
    async with http.get(f"{node.url}/api/v1/me/devices", headers=user_headers(user)) as r:
        listed = (await r.json())["devices"]
    assert sorted((d["endpoint"], d["name"]) for d in listed) == [
        (from_file.endpoint, "Firefox"), (inline.endpoint, "tidings devices add")]

    # refused by the server (an endpoint no push service has): exit 1, nothing stored
    bad = from_file.subscription() | {"endpoint": "https://evil.example.com/push/1"}
    refused = await asyncio.to_thread(_run, *common, "--subscription", json.dumps(bad), **secret)
    assert refused.returncode == 1 and "400" in refused.stderr
    # refused here: not JSON, no file, no subscription, a token for a browser
    for extra, flag in ((["--subscription", "{nope"], "--subscription"),
                        (["--subscription", f"@{tmp_path / 'none.json'}"], "--subscription"),
                        (["--subscription", "[1]"], "--subscription"),
                        ([], "--subscription"),
                        (["--subscription", "{}", "--device", "x"], "--device")):
        wrong = await asyncio.to_thread(_run, *common, *extra, **secret)
        assert wrong.returncode == 2 and flag in wrong.stderr, (extra, wrong.stderr)
    apns = await asyncio.to_thread(_run, *common[:-1], "apns", "--subscription", "{}", **secret)
    assert apns.returncode == 2 and "--subscription" in apns.stderr
    async with http.get(f"{node.url}/api/v1/me/devices", headers=user_headers(user)) as r:
        assert len((await r.json())["devices"]) == 2
