"""Webhook, Slack and PagerDuty bodies as a real local HTTP receiver sees them."""

from __future__ import annotations

import asyncio
import hashlib
import hmac

import pytest

from medic.alerts import PagerDutyNotifier, Secret, SlackNotifier, WebhookNotifier
from medic.errors import ConfigError
from medic.events import DeliveryStatus, NotificationKind

from .conftest import HttpReceiver, free_port, make_note


def test_webhook_posts_notification_json_with_token_and_signature(
    http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The generic webhook sends every field, a bearer token and an HMAC of the exact body."""
    monkeypatch.setenv("MEDIC_TEST_HOOK_TOKEN", "tok-123456")
    monkeypatch.setenv("MEDIC_TEST_HOOK_SIGNING", "sign-abcdef")
    hook = WebhookNotifier(
        url=http_receiver.url + "?via=medic",
        token=Secret("MEDIC_TEST_HOOK_TOKEN"),
        signing_secret=Secret("MEDIC_TEST_HOOK_SIGNING"),
        headers={"X-Team": "payments"},
    )
    delivery = asyncio.run(hook.send(make_note()))
    assert delivery.status is DeliveryStatus.SENT, delivery.error
    assert delivery.target == http_receiver.url  # no query string in the record
    [got] = http_receiver.received
    body = got.json()
    assert body["notification"]["incident_id"] == 42
    assert body["notification"]["key"] == "checkout/http-503"
    assert body["notification"]["link"] == "https://medic.example.com/incidents/42"
    assert body["notification"]["timeline"][-1] == "12:03 runbook verify failed"
    assert body["text"] == "[SEV1] checkout: checkout returns 503 (triggered)"
    assert got.headers["Authorization"] == "Bearer tok-123456"
    assert got.headers["X-Team"] == "payments"
    expected = hmac.new(b"sign-abcdef", got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Medic-Signature"] == f"sha256={expected}"


def test_slack_sends_text_and_blocks_with_escaping(
    http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack gets a text fallback plus blocks; <, > and & in values cannot forge links or mentions."""
    monkeypatch.setenv("MEDIC_TEST_SLACK_URL", http_receiver.url + "/T000/B000/XXXXSECRET")
    slack = SlackNotifier(url=Secret("MEDIC_TEST_SLACK_URL"))
    note = make_note(title="<!channel> & <https://evil.example|click>")
    delivery = asyncio.run(slack.send(note))
    assert delivery.status is DeliveryStatus.SENT, delivery.error
    assert delivery.target == "$MEDIC_TEST_SLACK_URL"
    body = http_receiver.received[0].json()
    assert body["text"].startswith(
        "[SEV1] checkout: &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;"
    )
    assert body["text"].endswith("<https://medic.example.com/incidents/42>")
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "section"]
    assert "• 12:01 restart failed" in body["blocks"][2]["text"]["text"]
    assert "<!channel>" not in str(body["blocks"][1:])


def test_pagerduty_trigger_ack_resolve_share_the_incident_key(
    http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Events v2: trigger carries a payload; acknowledge and resolve carry only the same dedup_key."""
    monkeypatch.setenv("MEDIC_TEST_PD_KEY", "R0UT1NGKEY0000000000000000000000")
    pd = PagerDutyNotifier(routing_key=Secret("MEDIC_TEST_PD_KEY"), url=http_receiver.url)

    async def run() -> list[DeliveryStatus]:
        out = []
        for kind in ("triggered", "acknowledged", "resolved"):
            out.append((await pd.send(make_note(kind=NotificationKind(kind)))).status)
        return out

    assert asyncio.run(run()) == [DeliveryStatus.SENT] * 3
    trigger, ack, resolve = (r.json() for r in http_receiver.received)
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == "R0UT1NGKEY0000000000000000000000"
    assert trigger["dedup_key"] == ack["dedup_key"] == resolve["dedup_key"] == "checkout/http-503"
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["source"] == "checkout"
    assert trigger["links"] == [
        {"href": "https://medic.example.com/incidents/42", "text": "medic incident"}
    ]
    assert ack == {
        "routing_key": trigger["routing_key"],
        "event_action": "acknowledge",
        "dedup_key": "checkout/http-503",
    }
    assert resolve["event_action"] == "resolve"
    assert "payload" not in resolve


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (404, False), (429, True), (500, True), (503, True)]
)
def test_http_status_decides_retry(
    http_receiver: HttpReceiver, status: int, retryable: bool
) -> None:
    """4xx (except 408/425/429) is final; 429 and 5xx may succeed later."""
    http_receiver.default = status
    delivery = asyncio.run(WebhookNotifier(url=http_receiver.url).send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.retryable is retryable
    assert delivery.error is not None
    assert f"HTTP {status}" in delivery.error


def test_unreachable_receiver_is_a_retryable_failure() -> None:
    """Connection refused becomes a failed, retryable delivery rather than an exception."""
    hook = WebhookNotifier(url=f"http://127.0.0.1:{free_port()}/hook", timeout=2.0)
    delivery = asyncio.run(hook.send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.retryable
    assert delivery.error is not None
    assert "ConnectError" in delivery.error


@pytest.mark.parametrize("url", ["ftp://x", "file:///etc/passwd", "", "javascript:alert(1)"])
def test_non_http_urls_are_refused(url: str) -> None:
    """Only http(s) webhook and PagerDuty URLs are accepted."""
    with pytest.raises(ConfigError):
        WebhookNotifier(url=url)
    with pytest.raises(ConfigError):
        PagerDutyNotifier(routing_key=Secret("PD"), url=url)


def test_secrets_must_be_env_names() -> None:
    """A literal URL or key where an environment variable name belongs is refused."""
    with pytest.raises(ConfigError):
        SlackNotifier(url="https://hooks.slack.com/services/T/B/X")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Secret("https://hooks.slack.com/services/T/B/X")
    with pytest.raises(ConfigError):
        PagerDutyNotifier(routing_key="R0UT1NGKEY")  # type: ignore[arg-type]


def test_silent_receiver_times_out_as_retryable() -> None:
    """A receiver that accepts and never answers costs the timeout, then a retryable failure."""
    import socket
    import time

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        hook = WebhookNotifier(url=f"http://127.0.0.1:{port}/hook", timeout=0.3)
        started = time.monotonic()
        delivery = asyncio.run(hook.send(make_note()))
    assert time.monotonic() - started < 5
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.retryable
    assert delivery.error == f"timed out after 0.3s posting to http://127.0.0.1:{port}/hook"


def test_redirects_are_not_followed(
    http_receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3xx is a final failure: the bearer token is never carried to wherever it points."""
    monkeypatch.setenv("MEDIC_TEST_HOOK_TOKEN", "tok-123456")
    http_receiver.default = 302
    hook = WebhookNotifier(url=http_receiver.url, token=Secret("MEDIC_TEST_HOOK_TOKEN"))
    delivery = asyncio.run(hook.send(make_note()))
    assert delivery.status is DeliveryStatus.FAILED
    assert not delivery.retryable
    assert len(http_receiver.received) == 1


def test_huge_error_body_is_read_only_in_part(http_receiver: HttpReceiver) -> None:
    """A 500 with a megabyte body yields a short error, not the whole body."""
    http_receiver.default = 500
    http_receiver.reply = b"E" * 1_000_000
    delivery = asyncio.run(WebhookNotifier(url=http_receiver.url).send(make_note()))
    assert delivery.error is not None
    assert len(delivery.error) < 300
