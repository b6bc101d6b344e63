"""The tracker's command line: signals, ingest, issues, incidents, report, export/import, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from rich.cells import cell_len

from medic.cli._main import _register, cli
from medic.tracker import HEAD_REVISION

_register()


class Medic:
    """Runs `medic --store STORE …` in-process and keeps the last result."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.runner = CliRunner(env={"USER": "tester", "COLUMNS": "160", "MEDIC_STORE": None})

    def __call__(self, *args: str, ok: bool = True, input: str | None = None) -> Result:
        result = self.runner.invoke(cli, ["--store", self.store, *args], input=input)
        if ok and result.exit_code != 0:
            raise AssertionError(
                f"medic {' '.join(args)} exited {result.exit_code}:\n{result.output}\n"
                f"{result.stderr}\n{result.exception!r}"
            )
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def medic(tmp_path: Path) -> Medic:
    """The CLI on a fresh SQLite store."""
    return Medic(str(tmp_path / "store.db"))


@pytest.fixture
def medic_both(store_url: str) -> Medic:
    """The CLI on a fresh SQLite store, then on the real PostgreSQL."""
    return Medic(store_url)


def _fails_with(result: Result, text: str) -> None:
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {result.stderr!r}"
    assert text in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_signal_lands_in_an_issue_and_an_incident(medic: Medic) -> None:
    """`medic signal` records; a second alike signal joins the same issue and incident."""
    out = medic("signal", "--service", "api", "--message", "timeout after 3s", "--kind", "timeout")
    assert "issue 1 (new)" in out.stdout
    assert "incident 1 (new)" in out.stdout
    again = medic.json(
        "signal", "--service", "api", "--message", "timeout after 9s", "--severity", "SEV2"
    )
    assert again["issue_id"] == 1
    assert again["incident_id"] == 1
    issue = medic.json("issues", "show", "1")["issue"]
    assert issue["times_seen"] == 2
    assert issue["severity"] == "SEV2"
    assert issue["grouping_variant"] == "message"


def test_signal_options_are_validated_like_the_wire_format(medic: Medic) -> None:
    """A bad severity, kind or tag is one clear line and a non-zero exit."""
    base = ("signal", "--service", "api", "--message", "m")
    _fails_with(medic(*base, "--severity", "SEV9", ok=False), "signal: severity: unknown severity")
    _fails_with(medic(*base, "--kind", "cosmic", ok=False), "unknown failure kind 'cosmic'")
    _fails_with(medic(*base, "--tag", "novalue", ok=False), "--tag: expected KEY=VALUE")
    assert medic.json("issues", "list")["items"] == []


def test_fingerprint_and_dedup_key_override_grouping(medic: Medic) -> None:
    """Different messages with one fingerprint share an issue; a dedup key picks the incident."""
    a = medic.json("signal", "--service", "db", "--message", "x", "--fingerprint", "pool")
    b = medic.json(
        "signal",
        "--service",
        "db",
        "--message",
        "y",
        "--fingerprint",
        "pool",
        "--dedup-key",
        "db-pool",
    )
    assert a["issue_id"] == b["issue_id"]
    assert a["incident_id"] != b["incident_id"]
    shown = medic("issues", "show", str(a["issue_id"])).stdout
    assert "Grouped by client-fingerprint" in shown
    assert "fingerprint: pool" in shown
    assert "Grouping hashes kept (1)" in shown


def test_ingest_records_good_lines_and_names_bad_ones(medic_both: Medic, tmp_path: Path) -> None:
    """Bad lines are reported with their numbers on stderr and skipped; the exit is 1."""
    medic = medic_both
    path = tmp_path / "signals.jsonl"
    good = {"service": "worker", "message": "KeyError: 'id'", "kind": "data-integrity"}
    path.write_text(
        "\n".join(
            [
                json.dumps(good | {"external_id": "1"}),
                '{"service": "worker", "message": ',
                json.dumps(good | {"severity": "SEV7"}),
                "",
                json.dumps(good | {"external_id": "2"}),
                json.dumps(good | {"external_id": "1"}),
                json.dumps({"service": "worker"}),
            ]
        )
        + "\n"
    )
    result = medic("ingest", str(path), ok=False)
    assert result.exit_code == 1
    errors = result.stderr.strip().splitlines()
    assert errors[0].startswith(f"{path}:2: not valid JSON")
    assert errors[1].startswith(f"{path}:3: severity: unknown severity 'SEV7'")
    assert errors[2] == f"{path}:7: message: required, and missing"
    assert "2 signal(s) recorded (1 already known)" in result.stdout
    assert "3 bad line(s) skipped" in result.stdout
    assert medic.json("issues", "show", "1")["issue"]["times_seen"] == 2


def test_ingest_of_a_clean_file_exits_zero_and_reads_stdin(medic: Medic) -> None:
    """Every line good: exit 0; '-' reads standard input; the JSON summary counts."""
    lines = "".join(
        json.dumps({"service": f"s{i % 3}", "message": f"boom {i}"}) + "\n" for i in range(2500)
    )
    summary = json.loads(medic("ingest", "-", "--json", input=lines).stdout)
    assert summary["recorded"] == 2500
    assert summary["bad"] == 0
    assert summary["new_issues"] == 3


def test_ingest_skips_a_line_too_long_without_reading_it_whole(
    medic: Medic, tmp_path: Path
) -> None:
    """A hostile 1 MB line is one bad line; the next line still records."""
    path = tmp_path / "big.jsonl"
    path.write_bytes(
        b'{"service": "a", "message": "' + b"x" * (1 << 20) + b'"}\n'
        b'{"service": "a", "message": "fine"}\n'
    )
    result = medic("ingest", str(path), ok=False)
    assert f"{path}:1: line longer than" in result.stderr
    assert "1 signal(s) recorded" in result.stdout


def test_issue_template_new_edit_resolve_ignore(medic: Medic) -> None:
    """Seed 000's fields go in by option; CRITICAL means SEV1; the lifecycle is enforced."""
    made = medic.json(
        "issues",
        "new",
        "--service",
        "web",
        "--title",
        "Sessions lost on restart",
        "--severity",
        "CRITICAL",
        "--assigned-to",
        "ops",
        "--description",
        "in-memory sessions",
        "--related-file",
        "app/session.py",
        "--related-file",
        "app/config.py",
        "--category",
        "Performance",
        "--owner",
        "InfrastructureEngineer",
        "--response-target",
        "1h",
        "--self-healing",
        "partial",
    )
    assert made["severity"] == "SEV1"
    assert made["related_files"] == ["app/session.py", "app/config.py"]
    assert made["response_target_s"] == 3600
    assert made["reported_by"] == "tester"
    issue_id = str(made["id"])
    edited = medic.json(
        "issues",
        "edit",
        issue_id,
        "--root-cause",
        "sessions in memory",
        "--prevention",
        "Redis sessions",
        "--severity",
        "LOW",
    )
    assert (edited["root_cause"], edited["severity"]) == ("sessions in memory", "SEV4")
    resolved = medic.json("issues", "resolve", issue_id, "--resolution", "moved to Redis")
    assert resolved["status"] == "resolved"
    assert medic.json("issues", "ignore", issue_id)["status"] == "ignored"
    assert medic.json("issues", "reopen", issue_id)["status"] == "unresolved"
    _fails_with(medic("issues", "reopen", issue_id, ok=False), "cannot go from 'unresolved'")
    _fails_with(medic("issues", "edit", issue_id, ok=False), "nothing to change")
    _fails_with(medic("issues", "edit", "77", "--title", "x", ok=False), "no issue 77")
    _fails_with(
        medic("issues", "new", "--service", "web", "--title", "t", "--severity", "HUGE", ok=False),
        "unknown severity",
    )


def test_issue_merge_keeps_every_hash(medic: Medic) -> None:
    """After a merge `issues show` lists both hashes, and new signals of either land there."""
    medic("signal", "--service", "api", "--message", "disk full on /var")
    medic("signal", "--service", "api", "--message", "ENOSPC writing chunk")
    merged = medic.json("issues", "merge", "2", "--into", "1")
    assert len(merged["hashes"]) == 2
    assert "Grouping hashes kept (2)" in medic("issues", "show", "1").stdout
    again = medic.json("signal", "--service", "api", "--message", "ENOSPC writing chunk")
    assert again["issue_id"] == 1
    _fails_with(medic("issues", "merge", "1", "--into", "1", ok=False), "name at least one issue")


def test_incident_lifecycle_and_illegal_transitions(medic_both: Medic) -> None:
    """ack → mitigate → resolve → close; acking a closed incident is refused and changes nothing."""
    medic = medic_both
    medic("signal", "--service", "web", "--message", "502 from upstream")
    assert medic.json("incidents", "ack", "1", "--note", "looking")["status"] == "acknowledged"
    medic("incidents", "note", "1", "restarting the pool", "--actor", "bob")
    assert medic.json("incidents", "mitigate", "1")["status"] == "mitigated"
    resolved = medic.json("incidents", "resolve", "1", "--kind", "runbook")
    assert (resolved["status"], resolved["resolution_kind"]) == ("resolved", "runbook")
    assert medic.json("incidents", "close", "1")["status"] == "closed"
    before = medic("incidents", "show", "1", "--json").stdout
    _fails_with(
        medic("incidents", "ack", "1", ok=False),
        "incident 1: cannot go from 'closed' to 'acknowledged'",
    )
    assert medic("incidents", "show", "1", "--json").stdout == before
    shown = medic.json("incidents", "show", "1")
    actors = [e["actor"] for e in shown["timeline"]]
    assert "tester" in actors
    assert "bob" in actors
    assert [i["id"] for i in shown["issues"]] == [1]
    text = medic("incidents", "show", "1").stdout
    for label in ("Impact started", "Detected", "Acknowledged", "Mitigated", "Resolved", "Closed"):
        assert label in text
    assert "restarting the pool" in text


def test_unknown_ids_and_cancel(medic: Medic) -> None:
    """Unknown ids are one line each; a cancelled incident is a false positive."""
    _fails_with(medic("incidents", "show", "999", ok=False), "no incident 999")
    _fails_with(medic("issues", "show", "999", ok=False), "no issue 999")
    _fails_with(medic("report", "999", ok=False), "no incident 999")
    medic("signal", "--service", "api", "--message", "flap")
    cancelled = medic.json("incidents", "cancel", "1", "--note", "probe flapped")
    assert (cancelled["status"], cancelled["resolution_reason"]) == ("cancelled", "false_positive")
    _fails_with(medic("incidents", "resolve", "1", ok=False), "cannot go from 'cancelled'")


def test_lists_paginate_and_filter(medic: Medic) -> None:
    """--limit and --cursor walk every incident once; --open and --service filter."""
    for n in range(5):
        medic("signal", "--service", f"svc{n}", "--message", "down")
    medic("incidents", "resolve", "2")
    seen: list[int] = []
    cursor: list[str] = []
    for _ in range(5):
        page = medic.json("incidents", "list", "--limit", "2", *cursor)
        seen += [i["id"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = ["--cursor", str(page["next_cursor"])]
    assert seen == [5, 4, 3, 2, 1]
    assert (
        "more: medic incidents list --cursor 4" in medic("incidents", "list", "--limit", "2").stdout
    )
    assert [i["id"] for i in medic.json("incidents", "list", "--open")["items"]] == [5, 4, 3, 1]
    assert [i["id"] for i in medic.json("issues", "list", "--service", "svc3")["items"]] == [4]
    assert len(medic.json("incidents", "list", "--since", "1h")["items"]) == 5
    _fails_with(
        medic("incidents", "list", "--since", "soon", ok=False), "--since: expected a duration"
    )


def test_hostile_text_prints_literally(medic: Medic) -> None:
    """Rich markup and terminal escapes in a message are shown, not obeyed."""
    medic("signal", "--service", "web", "--message", "[bold red]pwned[/] \x1b[2J done")
    out = medic("issues", "list").stdout
    assert "[bold red]pwned[/]" in out
    assert "\x1b[2J" not in out


def test_incidents_list_is_one_line_per_incident_cut_to_the_width(tmp_path: Path) -> None:
    """Long, wide-character and hostile titles: one line each, cut to the width, never obeyed."""
    store = str(tmp_path / "store.db")
    medic = Medic(store)
    title = "[bold red]pwned[/] \x1b[2J " + "very long message " * 20
    medic("signal", "--service", "web", "--message", title, "--dedup-key", "a")
    medic("signal", "--service", "宽字符服务", "--message", "短", "--dedup-key", "b")
    for columns in (160, 60):
        runner = CliRunner(env={"COLUMNS": str(columns), "MEDIC_STORE": None})
        out = runner.invoke(cli, ["--store", store, "incidents", "list"]).stdout
        assert "\x1b[2J" not in out
        table = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
        assert [line[:1] for line in table] == ["┏", "┃", "┡", "│", "│", "└"]
        assert {cell_len(line) for line in table} <= set(range(columns + 1))
        if columns == 160:
            assert "[bold red]pwned[/]" in table[4]
            assert "very long message …" in table[4]


def test_report_writes_markdown_and_html(medic: Medic, tmp_path: Path) -> None:
    """`medic report` prints Markdown or writes escaped HTML to a file."""
    medic("signal", "--service", "web", "--message", "<script>x</script> down")
    md = medic("report", "1").stdout
    assert "## Timeline" in md
    assert "OUTAGE BEGINS" in md
    target = tmp_path / "r.html"
    medic("report", "1", "--format", "html", "-o", str(target))
    page = target.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    _fails_with(
        medic("report", "1", "-o", str(tmp_path / "missing" / "r.md"), ok=False), "cannot write"
    )


def test_export_import_round_trip(medic_both: Medic, tmp_path: Path) -> None:
    """export → import into an empty store → export is identical; a bad file changes nothing."""
    medic = medic_both
    medic("demo", "--seed", "5", "--episodes", "12")
    dump = tmp_path / "dump.jsonl"
    medic("export", "-o", str(dump))
    other = Medic(str(tmp_path / "other.db"))
    assert "ids kept" in other("import", str(dump)).stdout
    assert other("export").stdout == dump.read_text()
    assert "nothing new" in other("import", str(dump)).stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(dump.read_text() + '{"type": "event", "id": "x"}\n')
    third = Medic(str(tmp_path / "third.db"))
    result = third("import", str(bad), ok=False)
    assert result.exit_code == 1
    assert f"{bad}: line {len(dump.read_text().splitlines()) + 1}: event" in result.stderr
    assert "nothing was imported" in result.stderr.splitlines()[-1]
    assert third.json("incidents", "list")["items"] == []


def test_db_upgrade_is_idempotent(medic: Medic) -> None:
    """`medic db upgrade` migrates a fresh store and is a no-op the second time."""
    assert medic("db", "upgrade").stdout.strip() == f"store at revision {HEAD_REVISION}"
    assert medic("db", "upgrade").stdout.strip() == f"store at revision {HEAD_REVISION}"


def test_demo_is_deterministic_per_seed_and_idempotent(tmp_path: Path) -> None:
    """Same seed → same issues and incidents; running it again records nothing new."""
    a, b = Medic(str(tmp_path / "a.db")), Medic(str(tmp_path / "b.db"))
    out = a("demo", "--seed", "11").stdout
    assert "recorded" in out
    assert "Issues" in out
    assert "Latest incidents" in out
    b("demo", "--seed", "11")

    def shape(m: Medic) -> list[tuple[str, str, int]]:
        items = m.json("issues", "list")["items"]
        return [(i["service"], i["title"], i["times_seen"]) for i in items]

    assert shape(a) == shape(b)
    assert {i["service"] for i in a.json("issues", "list")["items"]} == {
        "web",
        "api",
        "storage",
        "worker",
    }
    assert "already in" in a("demo", "--seed", "11").stdout
    statuses = {i["status"] for i in a.json("incidents", "list", "--limit", "100")["items"]}
    assert {"resolved", "triggered"} <= statuses


def test_store_comes_from_the_environment(tmp_path: Path) -> None:
    """MEDIC_STORE picks the store when --store is not given."""
    store = str(tmp_path / "env.db")
    runner = CliRunner(env={"MEDIC_STORE": store})
    assert runner.invoke(cli, ["signal", "--service", "a", "--message", "m"]).exit_code == 0
    assert Path(store).exists()


def test_real_process_end_to_end(tmp_path: Path) -> None:
    """`python -m medic` as a child process: records, lists as JSON, fails with one line."""
    env = {**os.environ, "MEDIC_STORE": str(tmp_path / "e2e.db"), "USER": "e2e"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "medic", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )

    made = run("signal", "--service", "api", "--message", "connection refused", "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["new_incident"] is True
    listed = run("incidents", "list", "--json")
    assert [i["service"] for i in json.loads(listed.stdout)["items"]] == ["api"]
    assert run("incidents", "ack", "1").returncode == 0
    assert run("incidents", "resolve", "1").returncode == 0
    assert run("incidents", "close", "1").returncode == 0
    refused = run("incidents", "ack", "1")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        "Error: incident 1: cannot go from 'closed' to 'acknowledged'"
    ]


def test_postmortem_and_action_items_feed_the_report(medic: Medic) -> None:
    """Sections and action items written from the CLI appear in `medic report`."""
    medic("signal", "--service", "db", "--message", "replica lag 90s", "--severity", "SEV2")
    medic("incidents", "resolve", "1")
    saved = medic.json(
        "incidents",
        "postmortem",
        "1",
        "--author",
        "ana",
        "--status",
        "complete",
        "--root-causes",
        "a vacuum held a lock",
        "--went-well",
        "the replica caught up",
    )
    assert (saved["status"], saved["authors"]) == ("complete", ["ana"])
    medic(
        "incidents",
        "action-item",
        "1",
        "Alert on replica lag",
        "--type",
        "mitigate",
        "--owner",
        "ana",
        "--bug",
        "https://bugs/9",
    )
    report = medic("report", "1").stdout
    assert "a vacuum held a lock" in report
    assert "| Alert on replica lag | mitigate | ana | https://bugs/9 | open |" in report
    _fails_with(medic("incidents", "postmortem", "1", ok=False), "give at least one section")
    _fails_with(medic("incidents", "postmortem", "9", "--summary", "x", ok=False), "no incident 9")


def test_incident_severity_and_merge(medic: Medic) -> None:
    """Severity changes and merges go through the tracker's rules."""
    medic("signal", "--service", "a", "--message", "down")
    medic("signal", "--service", "b", "--message", "down too")
    assert medic.json("incidents", "severity", "1", "SEV1")["severity"] == "SEV1"
    _fails_with(medic("incidents", "severity", "1", "SEV0", ok=False), "unknown severity")
    merged = medic.json("incidents", "merge", "2", "--into", "1")
    assert (merged["status"], merged["merged_into"]) == ("merged", 1)
    assert medic.json("incidents", "show", "1")["incident"]["issue_ids"] == [1, 2]
    _fails_with(medic("incidents", "merge", "1", "--into", "1", ok=False), "into itself")


def test_report_without_an_id_describes_the_latest_incident(medic: Medic) -> None:
    """`medic report` alone reports the newest incident; on an empty store it says so."""
    _fails_with(medic("report", ok=False), "no incident yet")
    medic("signal", "--service", "web", "--message", "first outage", "--dedup-key", "a")
    medic("signal", "--service", "db", "--message", "second outage", "--dedup-key", "b")
    assert "second outage" in medic("report").stdout
