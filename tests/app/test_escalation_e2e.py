"""Issue 6's scenario end to end: a crash loop that nothing fixes reaches a person, by email and webhook.

Real parts: `medic up` with a real child, a runbook that really runs, aiosmtpd,
a local HTTP receiver, and the store's timers across a medic restart.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alerts.conftest import HttpReceiver, SmtpServer
from medic.events import RecoveryExhausted
from medic.tracker import Tracker

from .harness import PY, running, toml_str, until, wait_event

CRASHES = "import sys; sys.exit(1)"
LINK = "http://127.0.0.1:8080/incidents/{id}"


def _config(tmp_path: Path, smtp: SmtpServer, hook: HttpReceiver, *, l3_budget: str) -> str:
    marker = tmp_path / "runbook-ran"
    runbooks = tmp_path / "runbooks"
    runbooks.mkdir(exist_ok=True)
    (runbooks / "clear-cache.yaml").write_text(
        "name: clear-cache\n"
        "description: a stale cache crashes the app\n"
        "applies_to: {service: [app]}\n"
        "steps:\n"
        "  - name: clear\n"
        "    context: the cache is rebuilt at start\n"
        f"    action: {{run: [{toml_str(sys.executable)}, -c, \"open({str(marker)!r}, 'w')\"]}}\n"
        f"    verify: {{run: [{toml_str(sys.executable)}, -c, 'raise SystemExit(1)'], expect_exit: 0}}\n"
        "    timeout: 5s\n"
    )
    return f"""
runbooks = "runbooks"

[services.app]
command = [{toml_str(PY)}, "-c", {toml_str(CRASHES)}]
start_time = "1s"
severity = "SEV3"
backoff = {{ initial = "50ms", max = "100ms", jitter = 0 }}
crash_loop = {{ max_restarts = 2, within = "30s", cooldown = "10m" }}
recovery = [{{ strategy = "restart", timeout = "15s" }}, {{ strategy = "runbook", timeout = "15s" }}]

[alerts]
link = "{LINK}"

[alerts.channels.team]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
security = "none"
from = "medic@example.com"
to = ["oncall@example.com"]

[alerts.channels.hook]
type = "webhook"
url = "{hook.url}"

[escalation]
interval = "100ms"

[escalation.L3]
budget = "{l3_budget}"
repeat = 1

[escalation.L4]
budget = "30m"
"""


def _notices(hook: HttpReceiver, kind: str) -> list[dict[str, Any]]:
    """The notifications the webhook received of one kind, oldest first."""
    notes = [r.json()["notification"] for r in hook.received]
    return [n for n in notes if n["kind"] == kind]


def _escalated(hook: HttpReceiver) -> list[dict[str, Any]]:
    return _notices(hook, "escalated")


async def _quiet(check: Callable[[], int], seconds: float) -> int:
    """How many more notices arrived during `seconds` of waiting."""
    before = check()
    await asyncio.sleep(seconds)
    return check() - before


def test_a_crash_loop_nothing_fixes_pages_a_person_until_acknowledged(
    tmp_path: Path, smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    """restart fails → runbook runs, its verification fails → L3: email + webhook; ack stops it."""
    config = _config(tmp_path, smtp_server, http_receiver, l3_budget="3s")

    async def main() -> tuple[Path, int]:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(RecoveryExhausted)
            exhausted = await wait_event(sub, lambda e: True, timeout=40)
            assert exhausted.level == 3
            await until(lambda: bool(_escalated(http_receiver)), timeout=20)
            await until(lambda: bool(smtp_server.mailbox.messages), timeout=20)
            incident_id = exhausted.incident_id
            with run.tracker() as tracker:
                tracker.acknowledge(incident_id, actor="ana", note="looking")
            more = await _quiet(lambda: len(_escalated(http_receiver)), 5.0)
            assert more == 0, "an acknowledged incident was paged again"
            with run.tracker() as tracker:
                tracker.resolve(incident_id, actor="ana", kind="human")
                tracker.close_incident(incident_id, actor="ana")
            return run.store, incident_id

    store, incident_id = asyncio.run(main())
    assert (tmp_path / "runbook-ran").exists()
    page = _escalated(http_receiver)[0]
    assert page["incident_id"] == incident_id
    assert page["link"] == LINK.format(id=incident_id)
    assert page["severity"] == "SEV2"  # the crash loop raised it
    assert any("runbook" in line for line in page["timeline"])
    mail = smtp_server.mailbox.messages[-1]
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    assert LINK.format(id=incident_id) in text
    assert "runbook" in text
    with Tracker(str(store)) as tracker:
        incident = tracker.incident(incident_id)
        attempts = [(a.action, a.outcome) for a in tracker.recovery_attempts(incident_id)]
        sent = tracker.notifications(incident_id)
    assert incident.status == "closed"
    assert attempts[0][0] == "restart"
    assert attempts[0][1] in ("failure", "timeout")
    assert any(a.startswith("runbook") and o == "failure" for a, o in attempts)
    channels = {(n["channel"], n["kind"]) for n in sent if n["delivered"]}
    assert {("team", "escalated"), ("hook", "escalated")} <= channels


def test_escalation_timers_survive_a_medic_restart_without_duplicate_notices(
    tmp_path: Path, smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    """Stop medic after the first page; the next medic sends the repeat once, nothing twice."""
    config = _config(tmp_path, smtp_server, http_receiver, l3_budget="4s")

    async def first() -> int:
        async with running(tmp_path, config) as run:
            sub = run.app.bus.subscribe(RecoveryExhausted)
            exhausted = await wait_event(sub, lambda e: True, timeout=40)
            await until(lambda: bool(_escalated(http_receiver)), timeout=20)
            return int(exhausted.incident_id)

    async def second() -> None:
        async with running(tmp_path, config):
            await until(lambda: len(_escalated(http_receiver)) >= 2, timeout=30)
            await asyncio.sleep(1.0)  # room for a duplicate to show up, if there were one

    incident_id = asyncio.run(first())
    asyncio.run(second())
    pages = [(p["incident_id"], p["level"], p["repeat"]) for p in _escalated(http_receiver)]
    assert pages[:2] == [(incident_id, "high", 0), (incident_id, "high", 1)]
    assert len(pages) == len(set(pages)), f"a notice went out twice: {pages}"
    assert len(_notices(http_receiver, "triggered")) <= 1
