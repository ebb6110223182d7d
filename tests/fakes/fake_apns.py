"""A local APNs for tests: the provider API over HTTP/2 and TLS (asyncio + h2).

It checks what Apple checks (path and token format, topic, push type, priority,
collapse id, expiration, payload size, the ES256 provider token's signature,
``kid``, ``iss`` and age, or a client certificate signed by the test CA),
answers from a per-device-token script (default 200), and records every
request. :func:`make_tls` makes the test CA, the server certificate and a
client certificate with ``cryptography``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import re
import ssl
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ConnectionTerminated, DataReceived, RequestReceived, StreamEnded

MAX_PAYLOAD = 4096
_TOKEN = re.compile(r"^[0-9a-fA-F]{64,200}$")


@dataclass
class TLSFiles:
    ca: Path  # the CA certificate (PEM) clients trust
    server_cert: Path
    server_key: Path
    client_pem: Path  # client certificate and key in one PEM (aioapns' cert_file)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert(subject: x509.Name, key, issuer: x509.Name, issuer_key, *, ca: bool = False,
          san: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_tls(folder: Path, client_topic: str) -> TLSFiles:
    """A test CA, a server certificate for localhost/127.0.0.1, and a client certificate
    whose subject UID is ``client_topic`` (as Apple's push certificates carry the bundle id)."""
    ca_key = _key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tidings test CA")])
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key = _key()
    server = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]),
                   server_key, ca_name, ca_key,
                   san=[x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    client_key = _key()
    client = _cert(x509.Name([x509.NameAttribute(NameOID.USER_ID, client_topic),
                              x509.NameAttribute(NameOID.COMMON_NAME, f"Push: {client_topic}")]),
                   client_key, ca_name, ca_key)
    pem = serialization.Encoding.PEM
    files = TLSFiles(folder / "ca.pem", folder / "server.pem", folder / "server.key",
                     folder / "client.pem")
    files.ca.write_bytes(ca.public_bytes(pem))
    files.server_cert.write_bytes(server.public_bytes(pem))
    files.server_key.write_bytes(_pem_key(server_key))
    files.client_pem.write_bytes(client.public_bytes(pem) + _pem_key(client_key))
    return files


def make_p8() -> tuple[str, Any]:
    """An APNs auth key: (.p8 PEM text, its public key)."""
    key = _key()
    return _pem_key(key).decode(), key.public_key()


@dataclass
class Answer:
    status: int = 200
    reason: str | None = None
    retry_after: str | None = None
    timestamp: int | None = None  # 410: milliseconds since the epoch
    delay: float = 0.0  # seconds before answering
    hold: bool = False  # never answer


@dataclass
class Received:
    token: str
    headers: dict[str, str]
    body: bytes
    auth: str | None  # the provider token (JWT) if token auth
    claims: dict[str, Any] | None
    jwt_header: dict[str, Any] | None
    client_subject: Any  # the TLS client certificate's subject, if cert auth
    status: int | None = None  # what the fake answered (None: not yet / never)

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class FakeAPNs:
    tls: TLSFiles
    team_id: str
    keys: dict[str, Any]  # key id -> ES256 public key
    script: dict[str, list[Answer]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)
    expired: set[str] = field(default_factory=set)  # provider tokens answered 403 Expired
    default: Answer = field(default_factory=Answer)  # the answer when no script says otherwise
    in_flight: int = 0
    peak_in_flight: int = 0
    host: str = "127.0.0.1"
    port: int = 0

    async def start(self) -> None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.tls.server_cert, self.tls.server_key)
        ctx.load_verify_locations(self.tls.ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), self.host, 0, ssl=ctx)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._server.close()

    def reset(self) -> None:
        self.script.clear()
        self.requests.clear()
        self.expired.clear()
        self.default = Answer()
        self.in_flight = self.peak_in_flight = 0

    def answer(self, token: str, *answers: Answer) -> None:
        """Answer the next requests for ``token`` with ``answers``, then 200."""
        self.script.setdefault(token, []).extend(answers)

    def expire_tokens(self) -> None:
        """Answer 403 ExpiredProviderToken to every provider token seen so far."""
        self.expired |= {r.auth for r in self.requests if r.auth}

    def to(self, token: str) -> list[Received]:
        return [r for r in self.requests if r.token == token]

    def _check(self, rec: Received, headers: dict[str, str]) -> tuple[int, str | None]:
        if headers.get(":method") != "POST" or not headers.get(":path", "").startswith(
                "/3/device/"):
            return 405, "MethodNotAllowed"
        if rec.auth is None and rec.client_subject is None:
            return 403, "MissingProviderToken"
        if rec.auth is not None:
            if rec.auth in self.expired:
                return 403, "ExpiredProviderToken"
            try:
                head = jwt.get_unverified_header(rec.auth)
                rec.jwt_header = head
                rec.claims = jwt.decode(rec.auth, self.keys[head["kid"]], algorithms=["ES256"],
                                        options={"require": ["iss", "iat"]})
            except (jwt.InvalidTokenError, KeyError):
                return 403, "InvalidProviderToken"
            if rec.claims["iss"] != self.team_id:
                return 403, "InvalidProviderToken"
            if rec.claims["iat"] < time.time() - 3600:
                return 403, "ExpiredProviderToken"
        if not headers.get("apns-topic"):
            return 400, "MissingTopic"
        if headers.get("apns-push-type") not in ("alert", "background", "voip", "complication",
                                                 "fileprovider", "mdm", "liveactivity"):
            return 400, "InvalidPushType"
        if headers.get("apns-priority", "10") not in ("5", "10"):
            return 400, "BadPriority"
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId"
        if not headers.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate"
        if not _TOKEN.match(rec.token):
            return 400, "BadDeviceToken"
        if len(rec.body) > MAX_PAYLOAD:
            return 413, "PayloadTooLarge"
        try:
            if "aps" not in json.loads(rec.body):
                return 400, "PayloadEmpty"
        except ValueError:
            return 400, "BadPayload"
        return 200, None

    async def _handle(self, conn: _Connection, stream_id: int, headers: dict[str, str],
                      body: bytes) -> None:
        auth = headers.get("authorization", "")
        rec = Received(token=headers.get(":path", "").removeprefix("/3/device/"),
                       headers=headers, body=body,
                       auth=auth.removeprefix("bearer ") if auth.startswith("bearer ") else None,
                       claims=None, jwt_header=None, client_subject=conn.client_subject)
        self.requests.append(rec)
        status, reason = self._check(rec, headers)
        script = self.script.get(rec.token)
        if status != 200:
            answer = Answer(status, reason)
        else:
            answer = script.pop(0) if script else self.default
        if answer.hold:
            return
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if answer.delay:
                await asyncio.sleep(answer.delay)
        finally:
            self.in_flight -= 1
        rec.status = answer.status
        conn.respond(stream_id, headers.get("apns-id") or str(uuid.uuid4()).upper(), answer)


class _Connection(asyncio.Protocol):
    def __init__(self, fake: FakeAPNs):
        self.fake = fake
        self.h2 = H2Connection(H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams: dict[int, tuple[dict[str, str], bytearray]] = {}
        self.client_subject = None
        self.tasks: set[asyncio.Task] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        cert = transport.get_extra_info("peercert")
        self.client_subject = cert.get("subject") if cert else None
        self.h2.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        for event in self.h2.receive_data(data):
            if isinstance(event, RequestReceived):
                self.streams[event.stream_id] = (dict(event.headers), bytearray())
            elif isinstance(event, DataReceived):
                self.streams[event.stream_id][1].extend(event.data)
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded):
                headers, body = self.streams.pop(event.stream_id)
                task = asyncio.ensure_future(
                    self.fake._handle(self, event.stream_id, headers, bytes(body)))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            elif isinstance(event, ConnectionTerminated):
                self.transport.close()
        self.flush()

    def respond(self, stream_id: int, apns_id: str, answer: Answer) -> None:
        if self.transport.is_closing():
            return
        headers = [(":status", str(answer.status)), ("apns-id", apns_id)]
        if answer.retry_after:
            headers.append(("retry-after", answer.retry_after))
        if answer.status == 200:
            self.h2.send_headers(stream_id, headers, end_stream=True)
        else:
            error: dict[str, Any] = {"reason": answer.reason}
            if answer.timestamp is not None:
                error["timestamp"] = answer.timestamp
            self.h2.send_headers(stream_id, [*headers, ("content-type", "application/json")])
            self.h2.send_data(stream_id, json.dumps(error).encode(), end_stream=True)
        self.flush()

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)
