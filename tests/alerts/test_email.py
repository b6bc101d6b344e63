"""Email over a real aiosmtpd server: plain, STARTTLS with auth, and failures that stay secret."""

from __future__ import annotations

import asyncio

import pytest

from medic.alerts import EmailNotifier, Secret, SmtpSecurity
from medic.errors import ConfigError
from medic.events import DeliveryStatus
from medic.testing import FakeClock

from .conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer, make_note


def test_plain_smtp_delivers_text_and_html(smtp_server: SmtpServer) -> None:
    """A notice arrives as multipart text + HTML with the seed's SEV1 fields and the link."""
    email = EmailNotifier(
        host="127.0.0.1",
        port=smtp_server.port,
        security="none",
        sender="medic@example.com",
        recipients=["oncall@example.com", "lead@example.com"],
        clock=FakeClock(),
    )
    delivery = asyncio.run(email.send(make_note()))
    assert delivery.status is DeliveryStatus.SENT, delivery.error
    assert delivery.target == "oncall@example.com,lead@example.com via 127.0.0.1:" + str(
        smtp_server.port
    )
    [msg] = smtp_server.mailbox.messages
    assert smtp_server.mailbox.envelopes == [
        ("medic@example.com", ["oncall@example.com", "lead@example.com"])
    ]
    assert msg["Subject"] == "[SEV1] checkout: checkout returns 503"
    assert msg["X-Medic-Incident"] == "42"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for needle in (
        "SEVERITY: SEV1 (Critical)",
        "START TIME: 2026-01-01 12:00 UTC",
        "- 12:01 restart failed",
    ):
        assert needle in text
    assert "https://medic.example.com/incidents/42" in text
    assert '<a href="https://medic.example.com/incidents/42">' in html


def test_starttls_with_login_reads_password_from_env(
    tls_smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """STARTTLS against a self-signed CA, then AUTH with the password from the named variable."""
    monkeypatch.setenv("MEDIC_TEST_SMTP_PASSWORD", SMTP_PASSWORD)
    email = EmailNotifier(
        host="127.0.0.1",
        port=tls_smtp_server.port,
        security=SmtpSecurity.STARTTLS,
        username=SMTP_USER,
        password=Secret("MEDIC_TEST_SMTP_PASSWORD"),
        ssl_context=tls_smtp_server.client_context,
        sender="medic@example.com",
        recipients=["oncall@example.com"],
        template="customer",
    )
    delivery = asyncio.run(email.send(make_note()))
    assert delivery.status is DeliveryStatus.SENT, delivery.error
    assert tls_smtp_server.logins == [SMTP_USER]
    [msg] = tls_smtp_server.mailbox.messages
    assert msg["Subject"] == "Service Disruption - 2026-01-01 12:00 UTC"
    assert SMTP_PASSWORD not in repr(email)


def test_wrong_password_fails_without_retry_and_without_leaking(
    tls_smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 535 from the server is a permanent failure; the error never contains the password."""
    wrong = "wr0ng-Passw0rd-value"
    monkeypatch.setenv("MEDIC_TEST_SMTP_PASSWORD", wrong)
    email = EmailNotifier(
        host="127.0.0.1",
        port=tls_smtp_server.port,
        username=SMTP_USER,
        password=Secret("MEDIC_TEST_SMTP_PASSWORD"),
        ssl_context=tls_smtp_server.client_context,
        sender="medic@example.com",
        recipients=["oncall@example.com"],
    )
    delivery = asyncio.run(email.send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert not delivery.retryable
    assert delivery.error is not None
    assert "535" in delivery.error
    assert wrong not in delivery.error
    assert wrong not in repr(delivery)
    assert tls_smtp_server.mailbox.messages == []


def test_untrusted_certificate_is_refused(tls_smtp_server: SmtpServer) -> None:
    """Without the test CA the self-signed certificate fails verification: no silent downgrade."""
    email = EmailNotifier(
        host="127.0.0.1",
        port=tls_smtp_server.port,
        sender="medic@example.com",
        recipients=["oncall@example.com"],
    )
    delivery = asyncio.run(email.send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.error is not None
    assert "TLS" in delivery.error
    assert tls_smtp_server.mailbox.messages == []


def test_starttls_required_but_not_offered_fails(smtp_server: SmtpServer) -> None:
    """A server without STARTTLS never gets the message in clear text when STARTTLS is asked for."""
    email = EmailNotifier(
        host="127.0.0.1",
        port=smtp_server.port,
        sender="medic@example.com",
        recipients=["oncall@example.com"],
    )
    delivery = asyncio.run(email.send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.error is not None
    assert "STARTTLS" in delivery.error
    assert smtp_server.mailbox.messages == []


def test_missing_password_variable_names_it(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset password variable fails the delivery with the variable's name, not a crash."""
    monkeypatch.delenv("MEDIC_TEST_UNSET_PASSWORD", raising=False)
    email = EmailNotifier(
        host="127.0.0.1",
        port=smtp_server.port,
        security="none",
        username="u",
        password=Secret("MEDIC_TEST_UNSET_PASSWORD"),
        sender="medic@example.com",
        recipients=["oncall@example.com"],
    )
    delivery = asyncio.run(email.send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert not delivery.retryable
    assert delivery.error is not None
    assert "MEDIC_TEST_UNSET_PASSWORD" in delivery.error


def test_connection_refused_is_retryable() -> None:
    """Nobody listening is a transient failure worth retrying."""
    from .conftest import free_port

    email = EmailNotifier(
        host="127.0.0.1",
        port=free_port(),
        security="none",
        sender="medic@example.com",
        recipients=["oncall@example.com"],
        timeout=2.0,
    )
    delivery = asyncio.run(email.send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.retryable


def test_hostile_title_cannot_inject_headers(smtp_server: SmtpServer) -> None:
    """CR/LF in a title stay inside the subject; no Bcc header appears."""
    email = EmailNotifier(
        host="127.0.0.1",
        port=smtp_server.port,
        security="none",
        sender="medic@example.com",
        recipients=["oncall@example.com"],
    )
    note = make_note(title="boom\r\nBcc: attacker@evil.example\r\n\r\n<script>x</script>")
    assert asyncio.run(email.send(note)).status is DeliveryStatus.SENT
    [msg] = smtp_server.mailbox.messages
    assert msg["Bcc"] is None
    assert smtp_server.mailbox.envelopes[0][1] == ["oncall@example.com"]
    assert "<script>" not in msg.get_body(("html",)).get_content()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"recipients": []},
        {"recipients": ["not-an-address"]},
        {"recipients": ["a@b.c\r\nBcc: x@y.z"]},
        {"port": 0},
        {"password": Secret("X_PASSWORD")},
        {"template": "nope"},
    ],
)
def test_bad_email_config_is_refused(kwargs: dict[str, object]) -> None:
    """Bad addresses, ports, a password without a user or an unknown template fail at construction."""
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "sender": "medic@example.com",
        "recipients": ["oncall@example.com"],
    }
    with pytest.raises(ConfigError):
        EmailNotifier(**{**base, **kwargs})  # type: ignore[arg-type]


def test_implicit_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    """security="tls" speaks TLS from the first byte (port 465 style) and verifies the certificate."""
    import ssl

    import trustme
    from aiosmtpd.controller import Controller

    from .conftest import Mailbox, free_port

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, ssl_context=server_ctx)
    controller.start()
    try:
        email = EmailNotifier(
            host="127.0.0.1",
            port=port,
            security="tls",
            ssl_context=client_ctx,
            sender="medic@example.com",
            recipients=["oncall@example.com"],
        )
        delivery = asyncio.run(email.send(make_note()))
    finally:
        controller.stop()
    assert delivery.status is DeliveryStatus.SENT, delivery.error
    assert len(mailbox.messages) == 1
