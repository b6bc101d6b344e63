"""HTTP channels: a generic JSON webhook, a Slack-compatible webhook, PagerDuty Events v2.

Error texts are medic's own ("HTTP 503 from https://host/path") plus a short,
redacted piece of the response body, never httpx's message, which quotes the
full URL (a Slack webhook URL is itself the secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from medic._version import __version__
from medic.alerts._notifier import DeliveryFailed, attempt, display_url, summary
from medic.alerts._secrets import Secret
from medic.alerts._templates import one_line, safe_link
from medic.clock import Clock, system_clock
from medic.errors import ConfigError
from medic.events import Delivery, Notification, NotificationKind
from medic.taxonomy import Severity

__all__ = ["PagerDutyNotifier", "SlackNotifier", "WebhookNotifier"]

_RETRYABLE = {408, 425, 429}
_MAX_BODY = 512 * 1024  # PagerDuty's own limit, a fair cap for every webhook


def _check_url(url: str, what: str) -> str:
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise ConfigError(f"{what} must be an http(s) URL")
    return url


async def _post(
    url: str, body: bytes, *, headers: Mapping[str, str], timeout: float, shown: str
) -> None:
    if len(body) > _MAX_BODY:
        raise DeliveryFailed(f"payload of {len(body)} bytes exceeds {_MAX_BODY}", retryable=False)
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": f"medic/{__version__}",
        **headers,
    }
    request = httpx.Request(
        "POST",
        url,
        content=body,
        headers=all_headers,
        extensions={"timeout": httpx.Timeout(timeout).as_dict()},
    )
    try:
        # The transport, not a Client: httpx.Client logs every request URL at INFO,
        # and a Slack webhook URL is itself the credential.
        async with httpx.AsyncHTTPTransport(retries=0) as transport:
            response = await transport.handle_async_request(request)
            try:
                head = bytearray()
                async for chunk in response.aiter_raw():
                    head += chunk
                    if len(head) >= 4096:
                        break
            finally:
                await response.aclose()
    except httpx.TimeoutException:
        raise DeliveryFailed(
            f"timed out after {timeout:g}s posting to {shown}", retryable=True
        ) from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__} posting to {shown}", retryable=True) from None
    if 200 <= response.status_code < 300:
        return
    code = response.status_code
    snippet = one_line(bytes(head[:400]).decode("utf-8", "replace"), 200)
    raise DeliveryFailed(
        f"HTTP {code} from {shown}" + (f": {snippet}" if snippet else ""),
        retryable=code in _RETRYABLE or code >= 500,
    )


class WebhookNotifier:
    """POSTs the notification as JSON; optional bearer token and HMAC-SHA256 body signature."""

    kind = "webhook"

    def __init__(
        self,
        *,
        url: str,
        name: str = "webhook",
        token: Secret | None = None,
        signing_secret: Secret | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
        clock: Clock = system_clock,
    ) -> None:
        self.name = name
        self.url = _check_url(url, f"webhook {name!r} url")
        self.target = display_url(url)
        self.token = token
        self.signing_secret = signing_secret
        self.headers = dict(headers or {})
        self.timeout = timeout
        self._clock = clock

    def body(self, note: Notification) -> dict[str, Any]:
        return {
            "version": "1",
            "source": "medic",
            "text": summary(note),
            "notification": note.as_dict(),
        }

    async def send(self, notification: Notification) -> Delivery:
        async def call() -> None:
            body = json.dumps(self.body(notification), ensure_ascii=False).encode()
            headers = dict(self.headers)
            if self.token is not None:
                headers["Authorization"] = f"Bearer {self.token.reveal()}"
            if self.signing_secret is not None:
                key = self.signing_secret.reveal().encode()
                digest = hmac.new(key, body, hashlib.sha256).hexdigest()
                headers["X-Medic-Signature"] = f"sha256={digest}"
            await _post(self.url, body, headers=headers, timeout=self.timeout, shown=self.target)

        secrets = (self.token, self.signing_secret)
        return await attempt(self, notification, call, clock=self._clock, secrets=secrets)

    def __repr__(self) -> str:
        return f"WebhookNotifier(name={self.name!r}, target={self.target!r}, token={self.token!r})"


def _slack_escape(text: str) -> str:
    """Slack's own rule: only &, < and > are control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier:
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat): text plus blocks.

    The whole webhook URL is the credential, so it is read from the environment.
    """

    kind = "slack"

    def __init__(
        self,
        *,
        url: Secret,
        name: str = "slack",
        timeout: float = 10.0,
        clock: Clock = system_clock,
    ) -> None:
        if not isinstance(url, Secret):
            raise ConfigError(
                f"slack {name!r}: the webhook URL must come from an environment variable"
            )
        self.name = name
        self.url = url
        self.target = f"${url.env}"
        self.timeout = timeout
        self._clock = clock

    def body(self, note: Notification) -> dict[str, Any]:
        text = _slack_escape(summary(note))
        facts = [
            f"*Service:* {_slack_escape(one_line(note.service))}",
            f"*Severity:* {Severity(note.severity)}",
            f"*Status:* {_slack_escape(one_line(note.status, 40))}",
            f"*Incident:* #{int(note.incident_id)}",
        ]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": summary(note)[:150]}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in facts]},
        ]
        lines = [_slack_escape(one_line(x)) for x in note.timeline[-10:]]
        if lines:
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "\n".join(f"• {x}" for x in lines)[:3000]},
                }
            )
        link = safe_link(note.link)
        if link:
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"<{link}|Open the incident>"},
                }
            )
            text = f"{text} <{link}>"
        return {"text": text, "blocks": blocks}

    async def send(self, notification: Notification) -> Delivery:
        async def call() -> None:
            url = _check_url(self.url.reveal(), f"${self.url.env}")
            body = json.dumps(self.body(notification), ensure_ascii=False).encode()
            await _post(
                url, body, headers={}, timeout=self.timeout, shown=display_url(url, path=False)
            )

        url = self.url.peek() or ""
        parts = urlsplit(url)
        secrets = (self.url, parts.path, parts.query, parts.path.rsplit("/", 1)[-1])
        return await attempt(self, notification, call, clock=self._clock, secrets=secrets)

    def __repr__(self) -> str:
        return f"SlackNotifier(name={self.name!r}, url={self.url!r})"


_PD_ACTION = {
    NotificationKind.TRIGGERED: "trigger",
    NotificationKind.ESCALATED: "trigger",
    NotificationKind.ACKNOWLEDGED: "acknowledge",
    NotificationKind.RESOLVED: "resolve",
}
_PD_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


class PagerDutyNotifier:
    """PagerDuty Events API v2, outbound: the medic incident key is PagerDuty's dedup_key,
    so acknowledge and resolve close the same PagerDuty alert."""

    kind = "pagerduty"

    def __init__(
        self,
        *,
        routing_key: Secret,
        name: str = "pagerduty",
        url: str = PAGERDUTY_URL,
        timeout: float = 10.0,
        clock: Clock = system_clock,
    ) -> None:
        if not isinstance(routing_key, Secret):
            raise ConfigError(
                f"pagerduty {name!r}: the routing key must come from an environment variable"
            )
        self.name = name
        self.routing_key = routing_key
        self.url = _check_url(url, f"pagerduty {name!r} url")
        self.target = display_url(url)
        self.timeout = timeout
        self._clock = clock

    def body(self, note: Notification, routing_key: str) -> dict[str, Any]:
        action = _PD_ACTION[NotificationKind(note.kind)]
        event: dict[str, Any] = {
            "routing_key": routing_key,
            "event_action": action,
            "dedup_key": one_line(note.dedup_key, 255),
        }
        if action != "trigger":
            return event
        event["payload"] = {
            "summary": summary(note)[:1024],
            "source": one_line(note.service, 255) or "medic",
            "severity": _PD_SEVERITY[str(note.level)],
            "component": one_line(note.service, 255),
            "class": str(note.kind),
            "custom_details": {
                "incident_id": note.incident_id,
                "status": note.status,
                "severity": str(Severity(note.severity)),
                "timeline": [one_line(x) for x in note.timeline[-20:]],
            },
        }
        if note.started_at is not None:
            event["payload"]["timestamp"] = note.started_at.isoformat()
        event["client"] = "medic"
        link = safe_link(note.link)
        if link:
            event["client_url"] = link
            event["links"] = [{"href": link, "text": "medic incident"}]
        return event

    async def send(self, notification: Notification) -> Delivery:
        async def call() -> None:
            body = json.dumps(self.body(notification, self.routing_key.reveal())).encode()
            await _post(self.url, body, headers={}, timeout=self.timeout, shown=self.target)

        return await attempt(
            self, notification, call, clock=self._clock, secrets=(self.routing_key,)
        )

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(name={self.name!r}, target={self.target!r}, routing_key={self.routing_key!r})"
