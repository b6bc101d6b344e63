"""`medic kpis`: the numbers that say how failures are handled, as a table or JSON."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import click
from rich.console import Console
from rich.table import Table

from medic.cli._main import Obj, cli
from medic.clock import parse_duration, utcnow
from medic.tracker import KpiReport, Stat

__all__ = ["kpi_table", "kpis"]


def _human(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def kpi_table(report: KpiReport) -> Table:
    """The KPI report as a Rich table: durations with mean, median and p90."""
    scope = report.service or "all services"
    table = Table(
        title=f"KPIs · {scope} · {report.since:%Y-%m-%d %H:%M} → {report.until:%Y-%m-%d %H:%M} UTC"
    )
    table.add_column("KPI", no_wrap=True)
    table.add_column("mean", justify="right")
    table.add_column("median", justify="right")
    table.add_column("p90", justify="right")
    table.add_column("n", justify="right")
    rows: list[tuple[str, Stat]] = [
        ("MTTD (impact → detected)", report.mttd),
        ("MTTA (triggered → acknowledged)", report.mtta),
        ("MTTR recovery (impact → resolved)", report.mttr_recovery),
        ("MTTR repair (first action → resolved)", report.mttr_repair),
        ("MTTR respond (triggered → resolved)", report.mttr_respond),
        ("MTTR resolve (impact → closed)", report.mttr_resolve),
    ]
    for name, stat in rows:
        table.add_row(
            name, _human(stat.mean), _human(stat.median), _human(stat.p90), str(stat.count)
        )
    table.add_section()
    table.add_row("incidents (open)", f"{report.incidents} ({report.open_incidents})", "", "", "")
    table.add_row("MTBF", _human(report.mtbf_s), "", "", "")
    table.add_row("auto-recovery rate", _pct(report.auto_recovery_rate), "", "", "")
    table.add_row("escalation rate (L3+)", _pct(report.escalation_rate), "", "", "")
    table.add_row("false-positive rate", _pct(report.false_positive_rate), "", "", "")
    breaches = sum(len(v) for v in report.response_target_breaches.values())
    rto = sum(len(v) for v in report.rto_breaches.values())
    table.add_row("response-target breaches", str(breaches), "", "", "")
    table.add_row("RTO breaches", str(rto), "", "", "")
    for service, value in report.availability.items():
        table.add_row(f"availability · {service}", _pct(value), "", "", "")
    return table


@cli.command()
@click.option(
    "--since",
    default="30d",
    show_default=True,
    help="Window length back from --until (e.g. 7d, 12h).",
)
@click.option(
    "--until",
    "until_text",
    default=None,
    help="End of the window, ISO 8601 (default: now).",
)
@click.option("--service", default=None, help="Only this service.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def kpis(obj: Obj, since: str, until_text: str | None, service: str | None, as_json: bool) -> None:
    """MTTD, MTTA, MTTR (four kinds), MTBF, availability and rates over a window."""
    try:
        window = parse_duration(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    until = _parse_until(until_text)
    with obj.open_tracker() as tracker:
        report = tracker.kpis(since=until - window, until=until, service=service)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        Console().print(kpi_table(report))


def _parse_until(text: str | None) -> datetime:
    if text is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO 8601 time, got {text!r}", param_hint="--until"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=utcnow().tzinfo)
    return moment + timedelta(0)
