"""`medic alerts list|test`: see the channels medic.toml configures, and prove they deliver.

`medic alerts test` is PagerDuty's "send test notification" for every channel at
once: it sends one notice through the real dispatcher (routing, rate limits and
retries as configured) and prints what became of it on each channel, so a wrong
password or a dead webhook shows up before the first real incident. Every cell
printed is scrubbed of the configured secrets' values; targets never hold them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import click

from medic.alerts import ALL, DASHBOARD, RetryPolicy, redact
from medic.cli._main import Obj, cli
from medic.cli._render import console, echo_json, table
from medic.cli._supervisor_commands import _config, _with_config
from medic.clock import utcnow
from medic.config import AlertsPlan, build_plan, load_config
from medic.events import AlertLevel, Delivery, DeliveryStatus, Notification, NotificationKind
from medic.taxonomy import Severity

__all__ = ["alerts"]

_LEVELS = [level.value for level in AlertLevel]
_SEVERITY_OF = {
    AlertLevel.CRITICAL: Severity.SEV1,
    AlertLevel.HIGH: Severity.SEV2,
    AlertLevel.MEDIUM: Severity.SEV3,
    AlertLevel.LOW: Severity.SEV4,
}


def _plan(obj: Obj, *, check_secrets: bool) -> AlertsPlan:
    return build_plan(load_config(_config(obj)), log_dir=None, check_secrets=check_secrets).alerts


def _scrub(plan: AlertsPlan, rows: Sequence[Sequence[object]]) -> list[list[str]]:
    """Belt and braces: a value that reached a command's argv through ${VAR} is masked too."""
    secrets = [os.environ.get(s.env) for s in plan.secrets()]
    return [[redact(str(cell), secrets) for cell in row] for row in rows]


@cli.group()
def alerts() -> None:
    """Alert channels from medic.toml: list them, send a test notification."""


@alerts.command("list")
@_with_config
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.pass_obj
def alerts_list(obj: Obj, as_json: bool) -> None:
    """Channels (type, target, rate limit, secrets) and which channels each level reaches."""
    plan = _plan(obj, check_secrets=False)
    channels = [
        [
            c.name, c.type, c.target,
            _limit_text(c.rate_limit or plan.rate_limit, c.rate_limit is None),
            ", ".join(f"${s.env} ({'set' if s.is_set() else 'NOT SET'})" for s in c.secrets)
            or "—",
        ]
        for c in plan.channels
    ]  # fmt: skip
    channels.append(["log", "log", "logger:medic.alerts", "—", "—"])
    routes = [
        [str(level), ", ".join(rule), ", ".join(_reached(plan, rule)) or "(dashboard only)"]
        for level, rule in plan.routing.routes.items()
    ]
    retry = plan.retry
    if as_json:
        echo_json(
            {
                "channels": [
                    {
                        "name": c.name,
                        "type": c.type,
                        "target": _scrub(plan, [[c.target]])[0][0],
                        "rate_limit": asdict(c.rate_limit or plan.rate_limit),
                        "secrets": [{"env": s.env, "set": s.is_set()} for s in c.secrets],
                    }
                    for c in plan.channels
                ],
                "routes": {
                    str(lv): _reached(plan, rule) for lv, rule in plan.routing.routes.items()
                },
                "retry": asdict(retry),
                "link": plan.link,
            }
        )
        return
    out = console()
    headers = ("channel", "type", "target", "rate limit", "secrets (environment)")
    out.print(table("Alert channels", headers, _scrub(plan, channels)))
    out.print(table("Routes", ("level", "rule", "reaches"), routes))
    out.print(
        f"retry: {retry.attempts} attempts, {retry.initial:g}s × {retry.factor:g} up to "
        f"{retry.max_delay:g}s, jitter {retry.jitter:g}; "
        f"incident link: {plan.link or '(none; set alerts.link)'}",
        markup=False,
    )


def _limit_text(limit: Any, default: bool) -> str:
    return f"{limit.per_minute:g}/min, burst {limit.burst}" + (" (default)" if default else "")


def _reached(plan: AlertsPlan, rule: Sequence[str]) -> list[str]:
    """The channels a route rule reaches, as the dispatcher resolves it."""
    if tuple(rule) == (DASHBOARD,):
        return []
    names = [c.name for c in plan.channels if ALL in rule or c.name in rule or c.type in rule]
    return names + (["log"] if "log" in rule else [])


@alerts.command("test")
@_with_config
@click.option("--channel", "channel", default=None, metavar="NAME", help="Only this channel.")
@click.option(
    "--level",
    type=click.Choice(_LEVELS),
    default="critical",
    show_default=True,
    help="The alert level to route by (critical reaches every channel).",
)
@click.option("--no-retry", is_flag=True, help="One attempt per channel, no retries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def alerts_test(
    ctx: click.Context, channel: str | None, level: str, no_retry: bool, as_json: bool
) -> None:
    """Send a test notification through the configured channels; exit 1 if any fails."""
    obj: Obj = ctx.ensure_object(Obj)
    plan = _plan(obj, check_secrets=True)
    alert_level = AlertLevel.parse(level)
    if no_retry:
        plan = replace(plan, retry=RetryPolicy(attempts=1))
    routing = plan.only(channel, alert_level) if channel is not None else None
    dispatcher = plan.dispatcher(bus=None, routing=routing)
    deliveries = asyncio.run(dispatcher.dispatch(_test_note(plan, alert_level)))
    kinds = {c.name: c.type for c in plan.channels}
    rows = [
        [
            d.channel, kinds.get(d.channel, d.channel), d.target, d.status.value,
            str(d.attempts), d.error or "",
        ]
        for d in deliveries
    ]  # fmt: skip
    failed = [d for d in deliveries if d.status is DeliveryStatus.FAILED]
    if as_json:
        echo_json(
            [
                {
                    "channel": row[0], "type": row[1], "target": row[2], "status": row[3],
                    "attempts": delivery.attempts, "error": row[5] or None,
                }
                for row, delivery in zip(_scrub(plan, rows), deliveries, strict=True)
            ]
        )  # fmt: skip
    else:
        headers = ("channel", "type", "target", "status", "attempts", "error")
        console().print(table(f"Test notification ({alert_level})", headers, _scrub(plan, rows)))
        click.echo(_summary(deliveries))
    if failed:
        ctx.exit(1)


def _summary(deliveries: Sequence[Delivery]) -> str:
    counts: dict[str, int] = {}
    for d in deliveries:
        counts[d.status.value] = counts.get(d.status.value, 0) + 1
    text = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    if [d.channel for d in deliveries] == [DASHBOARD]:
        text += "; no channel is routed for this level (see `medic alerts list`)"
    return text


def _test_note(plan: AlertsPlan, level: AlertLevel) -> Notification:
    now = utcnow()
    return Notification(
        incident_id=0,
        title="medic test notification: no action needed",
        service="medic",
        severity=_SEVERITY_OF[level],
        level=level,
        kind=NotificationKind.TRIGGERED,
        key=f"medic-test-{now:%Y%m%dT%H%M%S}",
        link=plan.link_for(0),
        started_at=now,
        timeline=(f"{now:%H:%M:%S} sent by `medic alerts test`",),
        impact="none: this is a test of the alert channels",
    )
