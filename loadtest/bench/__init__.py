"""Benchmark driver for Tidings, with nginx + nchan beside it: exact numbers for sizing a node.

``python -m loadtest.bench SCENARIO...`` starts a server itself (``tidings serve`` in
a subprocess: embedded PostgreSQL and Redis in a fresh folder by default, or the
``--database-url``/``--redis-url`` given, with ``--workers`` processes), or targets
a running one (``--url`` with ``--jwt-secret`` and ``--api-key``), or, with
``--target nchan``, nginx with the nchan module (one worker, a channel per user, no
auth, no database: a lower bound), and runs the scenarios named:

- ``idle``: C authenticated sockets held; connect rate, node CPU per connect, RSS per socket.
- ``fanout``: one publish to R connected recipients; when the first and the last have it.
- ``latency``: a fixed offered rate of single-recipient notifications; p50/p95/p99/max,
  node CPU per delivery (and with PostgreSQL and Redis).
- ``throughput``: a ladder of offered rates (plain or batch endpoint) until latency or
  errors break; what was sustained.
- ``recovery`` (Tidings only): reconnect with N missed; time until the last replayed.

Every scenario checks correctness (each socket sees its seqs once and in order, every
published notification arrives) and samples the driver's own CPU (all its processes)
in its measured windows: past 0.8 of a core the run is marked driver-bound in the JSON
and the markdown. ``--driver-procs N`` splits the sockets of ``idle`` and ``fanout``
over N processes. ``python -m loadtest.bench.sittings`` runs whole sittings (fresh
database each run, Tidings then nchan) and writes the median-of-sittings table.

Modules: ``cli`` (options, one run), ``run`` (what scenarios share), ``idle``,
``fanout``, ``rates`` (latency, throughput), ``recovery``, ``sockets`` (subscribers),
``producers``, ``split`` and ``holder`` (sockets over several processes), ``targets``
(Tidings, nginx + nchan), ``nchan``, ``procs`` (process sampling), ``machine`` (facts,
quiet check), ``report`` (one run's markdown), ``sittings``, ``fresh`` (fresh
databases), ``summary`` (the sittings table), ``peer`` (the recorded peer figures),
``stats`` (pure arithmetic).

Examples (loopback only)::

    python -m loadtest.bench --uvloop idle fanout latency recovery throughput
    python -m loadtest.bench --uvloop fanout --driver-procs 2 --recipients 10000
    python -m loadtest.bench --uvloop --target nchan idle fanout latency
    python -m loadtest.bench --url http://127.0.0.1:8000 --jwt-secret S --api-key K latency
"""
