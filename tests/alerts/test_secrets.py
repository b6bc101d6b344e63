"""Secrets come from the environment and never show in reprs, logs, deliveries or errors."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from medic.alerts import (
    Dispatcher,
    EmailNotifier,
    PagerDutyNotifier,
    RetryPolicy,
    Secret,
    SlackNotifier,
    WebhookNotifier,
    redact,
)
from medic.bus import Bus
from medic.errors import ConfigError
from medic.events import Delivery, DeliveryStatus
from medic.testing import FakeClock

from .conftest import HttpReceiver, free_port, make_note

TOKEN = "tok-SUPERSECRET-0123456789"
SLACK_PATH = "/services/T0001/B0001/SLACKSECRETxyz"


@pytest.fixture
def echo_server() -> Iterator[int]:
    """Answers 500 with the request's Authorization header, path and body echoed back."""

    class Echo(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            reply = f"{self.path} {self.headers.get('Authorization')} {body.decode()}".encode()
            self.send_response(500)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_errors_echoing_secrets_are_redacted(
    echo_server: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that echoes token, routing key and Slack path back: none reaches a Delivery, the bus or the log."""
    monkeypatch.setenv("MEDIC_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("MEDIC_TEST_PD", TOKEN + "-pd")
    monkeypatch.setenv("MEDIC_TEST_SLACK", f"http://127.0.0.1:{echo_server}{SLACK_PATH}")
    base = f"http://127.0.0.1:{echo_server}/hook"
    channels = [
        WebhookNotifier(url=base, token=Secret("MEDIC_TEST_TOKEN")),
        PagerDutyNotifier(routing_key=Secret("MEDIC_TEST_PD"), url=base),
        SlackNotifier(url=Secret("MEDIC_TEST_SLACK")),
    ]
    bus = Bus()
    sub = bus.subscribe()
    dispatcher = Dispatcher(
        notifiers=channels, clock=FakeClock(), bus=bus, retry=RetryPolicy(attempts=2)
    )
    with caplog.at_level(logging.DEBUG):
        deliveries = asyncio.run(dispatcher.dispatch(make_note()))
    assert [d.status for d in deliveries] == [DeliveryStatus.FAILED] * 3
    assert all(d.error and "HTTP 500" in d.error for d in deliveries)
    assert any(d.error and "***" in d.error for d in deliveries)  # the echo really carried them
    seen = " ".join(
        [repr(deliveries), repr(sub.drain()), caplog.text, repr(channels), repr(dispatcher)]
    )
    for secret in (TOKEN, "SLACKSECRETxyz", "T0001/B0001"):
        at = seen.find(secret)
        assert at < 0, seen[max(at - 300, 0) : at + 50]


def test_secret_values_never_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reprs name the environment variable, never its value."""
    monkeypatch.setenv("MEDIC_TEST_PW", TOKEN)
    email = EmailNotifier(
        host="127.0.0.1",
        sender="a@example.com",
        recipients=["b@example.com"],
        username="u",
        password=Secret("MEDIC_TEST_PW"),
    )
    text = repr(email) + repr(Secret("MEDIC_TEST_PW")) + str(Secret("MEDIC_TEST_PW"))
    assert "MEDIC_TEST_PW" in text
    assert TOKEN not in text


def test_missing_secret_error_names_only_the_variable(
    http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset token fails the delivery (not retried) and sends nothing."""
    monkeypatch.delenv("MEDIC_TEST_NOT_SET", raising=False)
    hook = WebhookNotifier(url=http_receiver.url, token=Secret("MEDIC_TEST_NOT_SET"))
    dispatcher = Dispatcher(notifiers=[hook], clock=FakeClock())
    [delivery] = asyncio.run(dispatcher.dispatch(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert (
        delivery.error == "MEDIC_TEST_NOT_SET: environment variable MEDIC_TEST_NOT_SET is not set"
    )
    assert http_receiver.received == []


def test_connection_errors_do_not_quote_the_slack_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx errors quote URLs; the Slack channel reports only scheme and host."""
    monkeypatch.setenv("MEDIC_TEST_SLACK", f"http://127.0.0.1:{free_port()}{SLACK_PATH}")
    delivery = asyncio.run(
        SlackNotifier(url=Secret("MEDIC_TEST_SLACK"), timeout=2).send(make_note())
    )
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.error is not None
    assert "SLACKSECRET" not in delivery.error
    assert "http://127.0.0.1:" in delivery.error


def test_redact_masks_plain_and_url_quoted_values() -> None:
    """Both the raw value and its percent-encoded form are masked; short values are left alone."""
    secret = "p@ss/word+1"
    text = f"a {secret} b p%40ss%2Fword%2B1 c p%40ss/word%2B1"
    assert redact(text, [secret]) == "a *** b *** c ***"
    assert redact("ab ab", ["ab", None]) == "ab ab"


@pytest.mark.parametrize("name", ["", "1ABC", "A-B", "A B", "X" * 200, "$HOME"])
def test_secret_names_are_validated(name: str) -> None:
    """Only plausible environment variable names are accepted."""
    with pytest.raises(ConfigError):
        Secret(name)


def test_published_deliveries_carry_no_exception_objects(http_receiver: HttpReceiver) -> None:
    """What reaches the bus is plain data (a str error), so no traceback can carry a secret."""
    http_receiver.default = 500
    bus = Bus()
    sub = bus.subscribe(Delivery)
    dispatcher = Dispatcher(
        notifiers=[WebhookNotifier(url=http_receiver.url)], clock=FakeClock(), bus=bus
    )
    asyncio.run(dispatcher.dispatch(make_note()))
    [delivery] = sub.drain()
    assert isinstance(delivery.error, str)
