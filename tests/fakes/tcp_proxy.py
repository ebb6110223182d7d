"""A TCP fault proxy for tests: put it between a client and a server, then break things.

It listens on a loopback port and forwards each accepted connection to the
target (a TCP address or a Unix socket), byte for byte. Faults:

- :meth:`refuse` stops listening (new connections are refused) until :meth:`accept`;
- :meth:`cut_all` closes every open connection at once, both sides, including one
  still being set up (accepted, its server side not yet connected): a server that
  goes away ends those too;
- :meth:`freeze` turns every open connection into a black hole: bytes are
  dropped both ways and nothing is closed (a peer gone without a reset, a
  middlebox that lost the connection's state); new connections work;
- :meth:`cut_after` arms a one-shot cut: the next client chunk that contains the
  given bytes is forwarded to the server, and then that connection is closed
  before any answer can come back, so the client cannot know the outcome
  (with ``refuse=True`` the server "goes down" at that moment: the proxy stops
  listening and cuts every other connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs, urlsplit

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def target_of(dsn: str) -> Callable[[], Awaitable[Streams]]:
    """How to reach the PostgreSQL server of ``dsn`` (a ``?host=`` socket folder or host:port)."""
    parts = urlsplit(dsn)
    host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
    port = parts.port or int(parse_qs(parts.query).get("port", ["5432"])[0])
    if host.startswith("/"):
        return lambda: asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
    return lambda: asyncio.open_connection(host, port)


def through(proxy: TcpProxy, dsn: str) -> str:
    """The PostgreSQL URL ``dsn`` reached through ``proxy`` (on its loopback port)."""
    parts = urlsplit(dsn)
    return f"postgresql://{parts.username or 'postgres'}@127.0.0.1:{proxy.port}{parts.path}"


class TcpProxy:
    def __init__(self, connect: Callable[[], Awaitable[Streams]]):
        self._connect = connect
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._opening: set[asyncio.StreamWriter] = set()  # accepted, server side connecting
        self._frozen: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._cut_marker: bytes | None = None
        self._refuse_on_cut = False
        self.cuts = 0  # connections cut by cut_after
        self.port = 0

    async def start(self) -> int:
        """Listen on a free loopback port (the same one again after :meth:`refuse`)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def refuse(self) -> None:
        """Stop listening: connecting now fails with "connection refused"."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def accept(self) -> None:
        """Listen again after :meth:`refuse`."""
        await self.start()

    def cut_all(self) -> None:
        for client in list(self._opening):
            client.transport.abort()
        for client, server in list(self._pairs):
            client.transport.abort()
            server.transport.abort()
        self._pairs.clear()

    def freeze(self) -> None:
        """Drop, from now on, every byte of the connections open now (closing none)."""
        self._frozen.update(self._pairs)

    def cut_after(self, marker: bytes, *, refuse: bool = False) -> None:
        """Cut the connection right after forwarding the next client chunk holding ``marker``."""
        self._cut_marker = marker
        self._refuse_on_cut = refuse

    def _down_but(self, spared: tuple[asyncio.StreamWriter, asyncio.StreamWriter]) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for client in list(self._opening):
            client.transport.abort()
        for pair in list(self._pairs):
            if pair is not spared:
                for w in pair:
                    w.transport.abort()

    async def stop(self) -> None:
        await self.refuse()
        self.cut_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted just before refuse(): the server is down now
            writer.transport.abort()
            return
        self._opening.add(writer)
        try:
            up_reader, up_writer = await self._connect()
        except OSError:
            writer.transport.abort()
            return
        finally:
            self._opening.discard(writer)
        if writer.transport.is_closing():  # cut while its server side was connecting
            up_writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            await asyncio.gather(self._pipe(reader, up_writer, pair, upstream=True),
                                 self._pipe(up_reader, writer, pair, upstream=False))
        finally:
            self._pairs.discard(pair)
            self._frozen.discard(pair)
            writer.transport.abort()
            up_writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter], *,
                    upstream: bool) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while chunk := await reader.read(65536):
                if not upstream and writer.transport.is_closing():
                    break  # the server answered a cut connection: it has done the work
                if pair in self._frozen:
                    continue
                writer.write(chunk)
                await writer.drain()
                if upstream and self._cut_marker is not None and self._cut_marker in chunk:
                    self._cut_marker = None
                    self.cuts += 1
                    pair[0].transport.abort()  # the client hears nothing more
                    if self._refuse_on_cut:
                        self._down_but(pair)
                    return  # the server side stays open until its answer comes
        for w in pair:  # one side ended: end the other
            w.transport.abort()
