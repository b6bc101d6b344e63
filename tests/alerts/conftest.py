"""Real local receivers for the alert channels: an HTTP server and an SMTP server on loopback."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from medic.events import AlertLevel, Notification, NotificationKind
from medic.taxonomy import Severity


def make_note(**overrides: Any) -> Notification:
    """A SEV1 notification with a link and a timeline; override any field."""
    fields: dict[str, Any] = {
        "incident_id": 42,
        "title": "checkout returns 503",
        "service": "checkout",
        "severity": Severity.SEV1,
        "level": AlertLevel.CRITICAL,
        "kind": NotificationKind.TRIGGERED,
        "status": "triggered",
        "key": "checkout/http-503",
        "link": "https://medic.example.com/incidents/42",
        "started_at": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        "timeline": ("12:00 probe failed", "12:01 restart failed", "12:03 runbook verify failed"),
    }
    fields.update(overrides)
    return Notification(**fields)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every POST; answers with the queued statuses, then with `default`."""

    port: int = 0
    default: int = 202
    statuses: deque[int] = field(default_factory=deque)
    reply: bytes = b'{"status":"success"}'
    received: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    """A stdlib HTTP server on 127.0.0.1 in a thread."""
    state = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.received.append(Received(self.path, dict(self.headers.items()), body))
            code = state.statuses.popleft() if state.statuses else state.default
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(state.reply)))
            self.end_headers()
            self.wfile.write(state.reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox
    client_context: ssl.SSLContext | None = None
    logins: list[str] = field(default_factory=list)
    ca_pem: bytes = b""  # the CA that signed the server's certificate, for a `ca_file`


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain aiosmtpd server on 127.0.0.1 (no TLS, no auth)."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, mailbox)
    finally:
        controller.stop()


SMTP_USER, SMTP_PASSWORD = "medic", "s3cret-Pa55word!"


@pytest.fixture
def tls_smtp_server() -> Iterator[SmtpServer]:
    """aiosmtpd requiring STARTTLS and LOGIN/PLAIN auth, with a self-signed CA made by trustme."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    mailbox = Mailbox()
    logins: list[str] = []

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        if ok:
            logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield SmtpServer(port, mailbox, client_ctx, logins, ca.cert_pem.bytes())
    finally:
        controller.stop()
