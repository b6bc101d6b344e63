"""The runbook executor: real child processes, real sockets, a real tracker."""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medic.config import load_runbook_file, parse_runbook
from medic.errors import InvalidInput
from medic.events import Signal
from medic.recovery import (
    Escalator,
    MedicActionSet,
    RunbookLevelAction,
    RunbookRunner,
    StepOutcome,
    check_value,
    matching_runbooks,
)
from medic.taxonomy import Kind, Severity
from medic.testing import FakeClock, temporary_tracker
from medic.tracker import IncidentView, Tracker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PY = sys.executable


class RecordingActions:
    """A MedicActions test double that writes down every call, in order."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def restart(self, *, service: str) -> None:
        self.log.append(f"restart {service}")

    async def checkpoint(self, *, paths: Sequence[str]) -> str:
        self.log.append(f"checkpoint {','.join(paths)}")
        return "cp-1"

    async def rollback(self, *, checkpoint_id: str) -> None:
        self.log.append(f"rollback {checkpoint_id}")

    async def restore(self, *, snapshot: str) -> None:
        self.log.append(f"restore {snapshot}")

    async def failover(self, *, group: str) -> None:
        self.log.append(f"failover {group}")

    async def set_degraded(self, *, service: str, feature: str, on: bool) -> None:
        self.log.append(f"degraded {service} {feature} {on}")


def book(*steps: dict[str, Any], **top: Any) -> Any:
    return parse_runbook({"name": "t", "steps": list(steps), **top}, source="test.yaml")


def step(name: str, action: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "context": f"why {name}", "action": action, **more}


def touch(path: Path) -> dict[str, Any]:
    return {"run": [PY, "-c", f"open({str(path)!r}, 'a').write('x')"]}


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        digest.update(str(p.relative_to(root)).encode())
        if p.is_file():
            digest.update(p.read_bytes())
    return digest.hexdigest()


def run(runner: RunbookRunner, rb: Any, **kw: Any) -> Any:
    return asyncio.run(runner.run(rb, **kw))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """The example store with one of each problem, in a temporary folder."""
    target = tmp_path / "store"
    os.spawnv(os.P_WAIT, PY, [PY, str(EXAMPLES / "storage" / "storectl.py"), "init", str(target)])
    return target


@pytest.fixture
def incident_tracker() -> Iterator[tuple[Tracker, IncidentView]]:
    """A real tracker holding one data-integrity incident on demo-store."""
    with temporary_tracker(clock=FakeClock()) as tracker:
        r = tracker.record(
            Signal(
                service="demo-store",
                message="NaN score in tenant_a",
                kind=Kind.DATA_INTEGRITY,
                severity=Severity.SEV2,
            )
        )
        assert r.incident_id is not None
        yield tracker, tracker.incident(r.incident_id)


def example(name: str, store: Path) -> tuple[Any, dict[str, str]]:
    rb = load_runbook_file(EXAMPLES / "runbooks" / f"{name}.yaml")
    return rb, {"store": str(store), "storectl": str(EXAMPLES / "storage" / "storectl.py")}


def test_dry_run_of_an_example_changes_nothing(store: Path) -> None:
    """A dry run plans every step and leaves the tree byte for byte as it was; a real run does not."""
    rb, values = example("sanitise-invalid-values", store)
    before = tree_hash(store)
    result = run(RunbookRunner(), rb, variables=values, dry_run=True)
    assert [s.outcome for s in result.steps] == [StepOutcome.PLANNED] * 2
    assert all(s.context and "storectl.py" in s.plan for s in result.steps)
    assert tree_hash(store) == before
    real = run(RunbookRunner(), rb, variables=values)
    assert real.outcome is StepOutcome.SUCCESS, real
    assert tree_hash(store) != before


def test_dry_run_sends_no_request_and_takes_no_medic_action() -> None:
    """A dry run neither calls medic actions nor opens a connection."""
    log: list[str] = []
    rb = book(
        step("r", {"medic": "restart", "with": {"service": "api"}}, backup_first=True),
        step("h", {"http": {"method": "POST", "url": "http://127.0.0.1:9/x"}}),
    )
    result = run(RunbookRunner(actions=RecordingActions(log)), rb, dry_run=True)
    assert result.outcome is StepOutcome.PLANNED
    assert log == []
    assert "checkpoint" in result.steps[0].plan


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A step that overruns is killed with its grandchildren, and ends as a timeout."""
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time;"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid));"
        "time.sleep(60)"
    )
    rb = book(
        step("hang", {"run": [PY, "-c", script]}, timeout="1s"),
        step("after", touch(tmp_path / "after")),
    )
    started = time.monotonic()
    result = run(RunbookRunner(), rb)
    assert time.monotonic() - started < 10
    assert [s.outcome for s in result.steps] == [StepOutcome.TIMEOUT, StepOutcome.SKIPPED]
    assert not (tmp_path / "after").exists()
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"grandchild {grandchild} survived the step's timeout")


def test_leftovers_die_when_the_step_exits(tmp_path: Path) -> None:
    """A step that exits leaving a background child holding its output ends at once, child killed."""
    pidfile = tmp_path / "left.pid"
    script = (
        "import subprocess, sys;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))"
    )
    started = time.monotonic()
    result = run(RunbookRunner(), book(step("bg", {"run": [PY, "-c", script]}, timeout="30s")))
    assert time.monotonic() - started < 10
    assert result.outcome is StepOutcome.SUCCESS
    left = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(left).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"leftover {left} outlived its step")


def test_destructive_step_without_confirmation_is_skipped(tmp_path: Path) -> None:
    """Without confirm the destructive step and all after it are skipped, with the reason said."""
    rb = book(
        step("safe", touch(tmp_path / "safe")),
        step("danger", touch(tmp_path / "danger"), destructive=True),
        step("after", touch(tmp_path / "after")),
    )
    result = run(RunbookRunner(), rb)
    assert [s.outcome for s in result.steps] == ["success", "skipped", "skipped"]
    assert "not confirmed" in result.steps[1].reason
    assert (tmp_path / "safe").exists()
    assert not (tmp_path / "danger").exists()
    assert not (tmp_path / "after").exists()
    assert result.outcome is StepOutcome.SKIPPED


def test_destructive_step_runs_when_confirmed(tmp_path: Path) -> None:
    """confirm=True (--yes) or a callable answering yes lets a destructive step run."""
    rb = book(step("danger", touch(tmp_path / "danger"), destructive=True))
    asked: list[str] = []

    def yes(s: Any) -> bool:
        asked.append(s.name)
        return True

    assert run(RunbookRunner(), rb, confirm=yes).outcome is StepOutcome.SUCCESS
    assert asked == ["danger"]
    assert (tmp_path / "danger").exists()


def test_backup_first_checkpoints_before_the_step() -> None:
    """backup_first calls the checkpoint handler, with the step's paths, before its action."""
    log: list[str] = []
    rb = book(
        step(
            "restore",
            {"medic": "restore", "with": {"snapshot": "s1"}},
            backup_first=True,
            backup_paths=["data"],
        )
    )
    result = run(RunbookRunner(actions=RecordingActions(log)), rb)
    assert log == ["checkpoint data", "restore s1"]
    assert result.steps[0].evidence["checkpoint"] == "cp-1"


def test_backup_first_without_a_checkpoint_handler_fails_before_acting(tmp_path: Path) -> None:
    """No checkpoint available: the step fails clearly and its action never runs."""
    rb = book(step("danger", touch(tmp_path / "x"), backup_first=True))
    result = run(RunbookRunner(actions=MedicActionSet(context="a test")), rb)
    assert result.outcome is StepOutcome.FAILURE
    assert "not available in a test" in result.steps[0].reason
    assert not (tmp_path / "x").exists()


def test_failed_verification_stops_the_runbook(tmp_path: Path) -> None:
    """A step whose verification fails ends as a failure, and later steps do not run."""
    rb = book(
        step("act", touch(tmp_path / "a"), verify={"run": [PY, "-c", "raise SystemExit(3)"]}),
        step("after", touch(tmp_path / "b")),
    )
    result = run(RunbookRunner(), rb)
    assert [s.outcome for s in result.steps] == ["failure", "skipped"]
    assert "verification failed: exit 3, expected 0" in result.steps[0].reason
    assert not (tmp_path / "b").exists()


def test_output_is_bounded_to_its_tail() -> None:
    """A command printing megabytes keeps only the last output_limit characters."""
    rb = book(step("chatty", {"run": [PY, "-c", "print('a' * 2_000_000 + 'END')"]}))
    result = run(RunbookRunner(output_limit=1000), rb)
    out = result.steps[0].output
    assert len(out) <= 1000
    assert out.rstrip().endswith("END")


def test_missing_command_is_a_failure_not_a_crash() -> None:
    """An argv whose program does not exist fails the step with the reason."""
    result = run(RunbookRunner(), book(step("x", {"run": ["/nonexistent/medic-test-prog"]})))
    assert result.outcome is StepOutcome.FAILURE
    assert "cannot start" in result.steps[0].reason


def test_missing_variable_fails_before_anything_runs(tmp_path: Path) -> None:
    """A variable without a value stops the run before its first step."""
    rb = book(
        step("first", touch(tmp_path / "first")),
        step("second", {"run": ["echo", "${tenant}"]}),
        variables={"tenant": None},
    )
    with pytest.raises(InvalidInput, match="tenant"):
        run(RunbookRunner(), rb)
    assert not (tmp_path / "first").exists()


def test_hostile_variable_value_is_refused() -> None:
    """A value that looks like an option or a path escape never reaches argv."""
    rb = book(step("x", {"run": ["ls", "${where}"]}), variables={"where": None})
    for bad in ("-rf", "../../etc", "a b", "x\ny", "$(id)"):
        with pytest.raises(InvalidInput, match="plain value"):
            run(RunbookRunner(), rb, variables={"where": bad})


@given(st.text(max_size=40))
def test_accepted_values_are_single_safe_words(value: str) -> None:
    """Every accepted value is one argv word: no whitespace, no leading '-', no '..' segment."""
    try:
        check_value("v", value)
    except InvalidInput:
        return
    assert value
    assert not value.startswith("-")
    assert not any(ch.isspace() for ch in value)
    assert ".." not in value.split("/")
    assert "$" not in value
    assert "\x00" not in value


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes]] = []  # noqa: RUF012 (shared on purpose: the test reads it)
    types: list[str] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.seen.append(("POST", self.path, body))
        self.types.append(self.headers.get("content-type", ""))
        self.send_response(202)
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(1.5)  # the client has given up by now; it is gone
            self.close_connection = True
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"indices": "ok"}')

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def http_server() -> Iterator[str]:
    """A real HTTP server on loopback."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.seen = []
    _Handler.types = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_action_and_verifications(http_server: str) -> None:
    """An HTTP action is sent with its body; HTTP and TCP verifications check the real server."""
    port = int(http_server.rsplit(":", 1)[1])
    rb = book(
        step(
            "rebuild",
            {"http": {"url": f"{http_server}/rebuild?space=${{space}}", "body": {"all": True}}},
            verify={"http": {"url": f"{http_server}/health", "expect_body": '"ok"'}},
        ),
        step(
            "listening",
            {"http": {"method": "GET", "url": f"{http_server}/health"}},
            verify={"tcp": {"host": "127.0.0.1", "port": port}},
        ),
        variables={"space": "tenant_a"},
    )
    result = run(RunbookRunner(), rb)
    assert result.outcome is StepOutcome.SUCCESS, result
    assert _Handler.seen == [("POST", "/rebuild?space=tenant_a", b'{"all": true}')]
    assert _Handler.types == ["application/json"]
    assert result.steps[0].evidence["status"] == 202


def test_http_action_with_unexpected_status_fails(http_server: str) -> None:
    """A status outside expect_status fails the step and names what was expected."""
    rb = book(step("x", {"http": {"url": f"{http_server}/x", "expect_status": 200}}))
    result = run(RunbookRunner(), rb)
    assert result.outcome is StepOutcome.FAILURE
    assert "HTTP 202, expected 200" in result.steps[0].reason


def test_slow_http_action_times_out(http_server: str) -> None:
    """An HTTP step is bounded by its timeout as a whole, not per read."""
    rb = book(
        step("slow", {"http": {"method": "GET", "url": f"{http_server}/slow"}}, timeout="300ms")
    )
    started = time.monotonic()
    result = run(RunbookRunner(), rb)
    assert time.monotonic() - started < 1.4
    assert result.outcome is StepOutcome.TIMEOUT


def test_a_crashing_injected_action_fails_the_step_and_is_recorded(
    incident_tracker: tuple[Tracker, IncidentView],
) -> None:
    """An injected medic action that raises fails its step; the run is still recorded."""
    tracker, incident = incident_tracker

    async def boom(service: str) -> None:
        raise RuntimeError(f"supervisor lost {service}")

    rb = book(step("r", {"medic": "restart", "with": {"service": "${incident.service}"}}))
    runner = RunbookRunner(actions=MedicActionSet(on_restart=boom), tracker=tracker)
    result = run(runner, rb, incident=incident)
    assert result.steps[0].reason == "RuntimeError: supervisor lost demo-store"
    assert [a.outcome for a in tracker.recovery_attempts(incident.id)] == ["failure"]


def test_medic_action_not_provided_fails_clearly() -> None:
    """A medic action the context lacks fails the step with 'not available', not a crash."""
    rb = book(step("r", {"medic": "restart", "with": {"service": "api"}}))
    result = run(RunbookRunner(), rb)
    assert result.outcome is StepOutcome.FAILURE
    assert "'restart' is not available" in result.steps[0].reason


def test_steps_land_on_the_incident_timeline(
    incident_tracker: tuple[Tracker, IncidentView], tmp_path: Path
) -> None:
    """Every executed step is a runbook_step entry; the run is one recovery attempt."""
    tracker, incident = incident_tracker
    rb = book(
        step("one", {"run": ["echo", "${incident.service}", "${incident.id}"]}),
        step("two", {"run": [PY, "-c", "raise SystemExit(1)"]}),
        step("three", touch(tmp_path / "three")),
    )
    result = run(RunbookRunner(tracker=tracker), rb, incident=incident)
    assert result.steps[0].output.strip() == f"demo-store {incident.id}"
    entries = [e for e in tracker.timeline(incident.id) if e.kind == "runbook_step"]
    assert [e.details["name"] for e in entries] == ["one", "two"]
    assert entries[1].details["outcome"] == "failure"
    assert entries[0].details["context"] == "why one"
    attempts = tracker.recovery_attempts(incident.id)
    assert [(a.action, a.attempt, a.outcome) for a in attempts] == [("runbook:t", 1, "failure")]
    run(RunbookRunner(tracker=tracker), rb, incident=incident)
    assert [a.attempt for a in tracker.recovery_attempts(incident.id)] == [1, 2]


def test_dry_run_records_nothing(incident_tracker: tuple[Tracker, IncidentView]) -> None:
    """A dry run with an incident leaves its timeline and attempts untouched."""
    tracker, incident = incident_tracker
    before = len(tracker.timeline(incident.id))
    run(
        RunbookRunner(tracker=tracker),
        book(step("x", {"run": ["true"]})),
        incident=incident,
        dry_run=True,
    )
    assert len(tracker.timeline(incident.id)) == before
    assert tracker.recovery_attempts(incident.id) == []


def test_matching_uses_service_kind_severity_and_fingerprint() -> None:
    """applies_to matches on every field it names; an empty applies_to matches nothing."""
    a = book(step("x", {"run": ["true"]}), applies_to={"service": "db", "kind": "data-integrity"})
    b = book(step("x", {"run": ["true"]}), applies_to={"severity": ["SEV1"]})
    c = book(step("x", {"run": ["true"]}), applies_to={"fingerprint": "abc"})
    d = book(step("x", {"run": ["true"]}))
    books = [a, b, c, d]
    assert matching_runbooks(books, service="db", kind=Kind.DATA_INTEGRITY) == [a]
    assert matching_runbooks(books, service="db", kind=Kind.TIMEOUT) == []
    assert matching_runbooks(books, service="x", severity=Severity.SEV1) == [b]
    assert matching_runbooks(books, service="x", fingerprints=["abc", "q"]) == [c]


def test_level_two_runs_matching_non_destructive_runbooks(tmp_path: Path) -> None:
    """When the escalator reaches L2 it runs the matching safe runbook and only notes the destructive one."""

    def rb(name: str, applies: dict[str, Any], **flags: Any) -> Any:
        steps = [step("s", touch(tmp_path / name), **flags)]
        return parse_runbook({"name": name, "applies_to": applies, "steps": steps}, source=name)

    books = [
        rb("safe", {"service": "demo-store", "kind": "data-integrity"}),
        rb("risky", {"service": "demo-store"}, destructive=True),
        rb("other", {"service": "api"}),
    ]
    clock = FakeClock()
    with temporary_tracker(clock=clock) as tracker:
        r = tracker.record(
            Signal(
                service="demo-store",
                message="NaN",
                kind=Kind.DATA_INTEGRITY,
                severity=Severity.SEV2,
            )
        )
        assert r.incident_id is not None
        action = RunbookLevelAction(runbooks=books, tracker=tracker, clock=clock)
        esc = Escalator(tracker=tracker, actions={2: action}, clock=clock)
        assert asyncio.run(esc.tick()) == []  # L1 armed
        assert not (tmp_path / "safe").exists()
        clock.advance(15 * 60)
        assert [f.level for f in asyncio.run(esc.tick())] == [2]
        assert (tmp_path / "safe").exists()
        assert not (tmp_path / "risky").exists()
        assert not (tmp_path / "other").exists()
        messages = [e.message for e in tracker.timeline(r.incident_id)]
        assert any("runbook risky matches but has destructive steps" in m for m in messages)
        assert [a.action for a in tracker.recovery_attempts(r.incident_id)] == ["runbook:safe"]


def test_level_two_runbooks_can_run_beside_the_ladder(
    incident_tracker: tuple[Tracker, IncidentView], tmp_path: Path
) -> None:
    """With `spawn`, the L2 action returns at once and the runbook finishes in the task group."""
    tracker, incident = incident_tracker
    slow = parse_runbook(
        {
            "name": "slow",
            "applies_to": {"service": "demo-store"},
            "steps": [
                step(
                    "s",
                    {
                        "run": [
                            PY,
                            "-c",
                            f"import time; time.sleep(0.5); open({str(tmp_path / 'done')!r}, 'w')",
                        ]
                    },
                )
            ],
        },
        source="slow.yaml",
    )

    async def main() -> float:
        async with asyncio.TaskGroup() as group:
            action = RunbookLevelAction(runbooks=[slow], tracker=tracker, spawn=group.create_task)
            started = time.monotonic()
            await action(incident, Escalator(tracker=tracker).ladder.at(2), 0)
            returned = time.monotonic() - started
            assert not (tmp_path / "done").exists()
        return returned

    assert asyncio.run(main()) < 0.4
    assert (tmp_path / "done").exists()


def test_an_unusable_incident_value_skips_only_the_runbooks_that_use_it(tmp_path: Path) -> None:
    """A service name that is not a plain word blocks runbooks that use it, not the others."""

    def rb(name: str, argv: list[str]) -> Any:
        steps = [step("s", {"run": argv})]
        return parse_runbook(
            {"name": name, "applies_to": {"service": "demo store"}, "steps": steps}, source=name
        )

    uses = rb("uses", [PY, "-c", "pass", "${incident.service}"])
    plain = rb("plain", [PY, "-c", f"open({str(tmp_path / 'plain')!r}, 'w')"])
    with temporary_tracker() as tracker:
        r = tracker.record(Signal(service="demo store", message="x", kind=Kind.DATA_INTEGRITY))
        assert r.incident_id is not None
        incident = tracker.incident(r.incident_id)
        asyncio.run(
            RunbookLevelAction(runbooks=[uses, plain], tracker=tracker)(
                incident, Escalator(tracker=tracker).ladder.at(2), 0
            )
        )
        assert (tmp_path / "plain").exists()
        messages = [e.message for e in tracker.timeline(incident.id)]
        assert any("runbook uses could not start" in m and "plain value" in m for m in messages)
