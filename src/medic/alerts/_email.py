"""Email over SMTP: plain text and HTML from a message template, STARTTLS or TLS optional.

The standard library's smtplib runs in a worker thread: one blocking exchange
per notice is cheap, and it saves a dependency for a path that is not hot.
STARTTLS, when asked for, is required: a server that does not offer it fails
the delivery rather than receiving the password in clear text.
"""

from __future__ import annotations

import asyncio
import enum
import re
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from medic.alerts._notifier import DeliveryFailed, attempt
from medic.alerts._secrets import Secret
from medic.alerts._templates import Templates
from medic.clock import Clock, system_clock
from medic.errors import ConfigError
from medic.events import Delivery, Notification

__all__ = ["EmailNotifier", "SmtpSecurity"]

_ADDRESS = re.compile(r"[^\s@<>,;\"']+@[^\s@<>,;\"']+")


class SmtpSecurity(enum.StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS, usually port 465


class EmailNotifier:
    """Sends one message to all `recipients`; the password is read from `password` (an env name)."""

    kind = "email"

    def __init__(
        self,
        *,
        host: str,
        sender: str,
        recipients: Sequence[str],
        name: str = "email",
        port: int = 587,
        security: SmtpSecurity | str = SmtpSecurity.STARTTLS,
        username: str | None = None,
        password: Secret | None = None,
        template: str = "internal",
        templates: Templates | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = 15.0,
        clock: Clock = system_clock,
    ) -> None:
        addresses = [sender, *recipients]
        bad = [a for a in addresses if not isinstance(a, str) or not _ADDRESS.fullmatch(a)]
        if bad or not recipients:
            raise ConfigError(
                f"email {name!r}: need a sender and recipients like a@b.c, got {bad!r}"
            )
        if password is not None and username is None:
            raise ConfigError(f"email {name!r}: a password needs a username")
        if not 0 < port < 65536:
            raise ConfigError(f"email {name!r}: port must be 1..65535")
        self.name = name
        self.host, self.port = host, port
        self.sender, self.recipients = sender, tuple(recipients)
        self.security = SmtpSecurity(security)
        self.username, self.password = username, password
        self.templates = templates or Templates()
        self.template = self.templates[template]
        self.ssl_context = ssl_context
        self.timeout = timeout
        self._clock = clock
        shown = ",".join(self.recipients)
        self.target = f"{shown} via {host}:{port}"[:500]

    def message(self, note: Notification) -> EmailMessage:
        rendered = self.template.render(note, now=self._clock.now())
        msg = EmailMessage()
        msg["Subject"] = rendered.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = formatdate(self._clock.now().timestamp(), usegmt=True)
        msg["Message-ID"] = make_msgid(domain="medic.local")
        msg["X-Medic-Incident"] = str(int(note.incident_id))
        msg.set_content(rendered.text)
        if rendered.html is not None:
            msg.add_alternative(rendered.html, subtype="html")
        return msg

    def _send_blocking(self, msg: EmailMessage, password: str | None) -> None:
        context = self.ssl_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.security is SmtpSecurity.TLS:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            smtp.ehlo()
            if self.security is SmtpSecurity.STARTTLS:
                if not smtp.has_extn("starttls"):
                    raise DeliveryFailed(
                        f"{self.host}:{self.port} does not offer STARTTLS", retryable=False
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username is not None and password is not None:
                smtp.login(self.username, password)
            smtp.send_message(msg)

    async def send(self, notification: Notification) -> Delivery:
        async def call() -> None:
            password = self.password.reveal() if self.password is not None else None
            msg = self.message(notification)
            try:
                await asyncio.to_thread(self._send_blocking, msg, password)
            except smtplib.SMTPResponseException as exc:
                text = (
                    exc.smtp_error.decode("utf-8", "replace")
                    if isinstance(exc.smtp_error, bytes)
                    else str(exc.smtp_error)
                )
                raise DeliveryFailed(
                    f"SMTP {exc.smtp_code}: {text[:300]}", retryable=400 <= exc.smtp_code < 500
                ) from None
            except smtplib.SMTPRecipientsRefused as exc:
                raise DeliveryFailed(
                    f"recipients refused: {', '.join(exc.recipients)}", retryable=False
                ) from None
            except ssl.SSLError as exc:
                raise DeliveryFailed(
                    f"TLS with {self.host}:{self.port} failed: {exc.reason}", retryable=False
                ) from None
            except (smtplib.SMTPException, OSError) as exc:
                raise DeliveryFailed(
                    f"{type(exc).__name__} talking to {self.host}:{self.port}: {exc}",
                    retryable=True,
                ) from None

        return await attempt(self, notification, call, clock=self._clock, secrets=(self.password,))

    def __repr__(self) -> str:
        return (
            f"EmailNotifier(name={self.name!r}, target={self.target!r}, "
            f"security={self.security.value!r}, password={self.password!r})"
        )
