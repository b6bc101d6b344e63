"""`medic runbook list|show|run` on the shipped examples, against a real example store."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from medic.cli._main import _register, cli
from medic.tracker import Tracker

_register()

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
STORECTL = EXAMPLES / "storage" / "storectl.py"


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        digest.update(str(p.relative_to(root)).encode())
        if p.is_file():
            digest.update(p.read_bytes())
    return digest.hexdigest()


class Medic:
    """Runs `medic --store STORE runbook …` in-process with the examples folder."""

    def __init__(self, tmp_path: Path) -> None:
        self.db = str(tmp_path / "medic.db")
        self.store = tmp_path / "store"
        subprocess.run([sys.executable, str(STORECTL), "init", str(self.store)], check=True)
        self.vars = ["--var", f"store={self.store}", "--var", f"storectl={STORECTL}"]
        self.runner = CliRunner(env={"USER": "tester", "COLUMNS": "200", "MEDIC_STORE": None})

    def __call__(self, *args: str, code: int = 0) -> Result:
        result = self.runner.invoke(cli, ["--store", self.db, *args])
        assert result.exit_code == code, (
            f"medic {' '.join(args)} exited {result.exit_code}:\n{result.output}\n{result.exception!r}"
        )
        return result

    def run(self, name: str, *args: str, code: int = 0) -> Result:
        return self(
            "runbook",
            "run",
            name,
            "--dir",
            str(EXAMPLES / "runbooks"),
            *self.vars,
            *args,
            code=code,
        )

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def medic(tmp_path: Path) -> Medic:
    """The CLI, a fresh SQLite tracker and a fresh example store."""
    return Medic(tmp_path)


def test_list_and_show(medic: Medic) -> None:
    """list names every example; show gives each step with its context and plan."""
    listed = medic.json("runbook", "list", "--dir", str(EXAMPLES / "runbooks"))
    assert {r["name"] for r in listed} >= {
        "reset-tenant",
        "restore-latest-backup",
        "read-only-mode",
    }
    shown = medic.json("runbook", "show", "reset-tenant", "--dir", str(EXAMPLES / "runbooks"))
    assert shown["destructive"] is True
    assert [s["destructive"] for s in shown["steps"]] == [False, True]
    assert all(s["context"] for s in shown["steps"])
    text = medic("runbook", "show", "reset-tenant", "--dir", str(EXAMPLES / "runbooks")).stdout
    assert "why:" in text
    assert "tenant=(required)" in text


@pytest.mark.parametrize(
    "name",
    [
        "sanitise-invalid-values",
        "move-corrupt-file-aside",
        "rebuild-index",
        "reset-tenant",
        "restore-latest-backup",
        "read-only-mode",
    ],
)
def test_dry_run_of_every_example_changes_nothing(medic: Medic, name: str) -> None:
    """`run --dry-run` prints each step with its context and leaves the store's tree as it was."""
    before = tree_hash(medic.store)
    out = medic.run(
        name,
        "--dry-run",
        "--var" if name == "reset-tenant" else "--yes",
        *(["tenant=tenant_a"] if name == "reset-tenant" else []),
    ).stdout
    assert "DRY RUN" in out
    assert "why:" in out
    assert str(STORECTL) in out
    assert tree_hash(medic.store) == before


def test_real_runs_repair_the_example_store(medic: Medic) -> None:
    """The repair runbooks, run for real, leave a store that checks clean."""
    for name in ("sanitise-invalid-values", "move-corrupt-file-aside", "rebuild-index"):
        medic.run(name)
    check = subprocess.run([sys.executable, str(STORECTL), "check", str(medic.store)], check=False)
    assert check.returncode == 0
    assert (medic.store / "wal-corrupt" / "000002.log").exists()


def test_destructive_step_needs_yes(medic: Medic) -> None:
    """Without --yes (and no terminal) the reset is skipped and exits 1; with --yes it runs."""
    records = medic.store / "tenants" / "tenant_b" / "records.jsonl"
    before = records.read_text()
    result = medic.run("reset-tenant", "--var", "tenant=tenant_b", code=1)
    assert "destructive step not confirmed" in result.stdout
    assert records.read_text() == before
    medic.run("reset-tenant", "--var", "tenant=tenant_b", "--yes")
    assert records.read_text() == ""
    assert list((medic.store / "backups").glob("backup-*.tar.gz"))


def test_restore_latest_backup_round_trip(medic: Medic) -> None:
    """reset a tenant, then restore-latest-backup brings its records back and writes reopen."""
    medic.run("sanitise-invalid-values")  # a backup of the NaN fails the restore's verification
    records = medic.store / "tenants" / "tenant_b" / "records.jsonl"
    before = records.read_text()
    medic.run("reset-tenant", "--var", "tenant=tenant_b", "--yes")
    medic.run("restore-latest-backup", "--yes")
    assert records.read_text() == before
    assert not (medic.store / "READONLY").exists()


def test_steps_land_on_the_incident(medic: Medic) -> None:
    """--incident puts each executed step on the incident's timeline and the run in its attempts."""
    medic(
        "signal", "--service", "demo-store", "--message", "stale index", "--kind", "data-integrity"
    )
    result = medic.json(
        "runbook",
        "run",
        "rebuild-index",
        "--dir",
        str(EXAMPLES / "runbooks"),
        *medic.vars,
        "--incident",
        "1",
    )
    assert result["outcome"] == "success"
    tracker = Tracker(medic.db)
    try:
        steps = [e for e in tracker.timeline(1) if e.kind == "runbook_step"]
        assert [e.details["name"] for e in steps] == ["rebuild every tenant's index"]
        assert [a.action for a in tracker.recovery_attempts(1)] == ["runbook:rebuild-index"]
    finally:
        tracker.close()


def test_errors_are_one_clear_line(medic: Medic, tmp_path: Path) -> None:
    """Unknown runbook, hostile --var, missing incident and a bad file each fail in one line."""
    r = medic.run("nope", code=1)
    assert "no runbook 'nope'" in r.stderr
    r = medic(
        "runbook",
        "run",
        "rebuild-index",
        "--dir",
        str(EXAMPLES / "runbooks"),
        "--var",
        "store=;rm -rf /",
        code=1,
    )
    assert "not a plain value" in r.stderr
    r = medic.run("rebuild-index", "--incident", "99", code=1)
    assert "99" in r.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yaml").write_text(
        "name: x\nsteps: [{name: a, context: b, action: {run: [x]}, oops: 1}]\n"
    )
    r = medic("runbook", "list", "--dir", str(bad), code=1)
    assert "x.yaml:steps[0].oops: unknown key" in r.stderr
    assert "Traceback" not in r.output


def test_default_folder_is_beside_the_config(tmp_path: Path) -> None:
    """Without --dir, runbooks/ beside the config file is read."""
    conf = tmp_path / "site"
    shutil.copytree(EXAMPLES / "runbooks", conf / "runbooks")
    (conf / "medic.toml").write_text('[services.web]\ncommand = ["true"]\n')
    runner = CliRunner(env={"MEDIC_STORE": None})
    out = runner.invoke(cli, ["-c", str(conf / "medic.toml"), "runbook", "list", "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == 6


def test_the_config_can_name_another_runbook_folder(tmp_path: Path) -> None:
    """`runbooks = "PATH"` in medic.toml is read relative to the config file."""
    conf = tmp_path / "site"
    shutil.copytree(EXAMPLES / "runbooks", tmp_path / "procedures")
    conf.mkdir()
    (conf / "medic.toml").write_text(
        'runbooks = "../procedures"\n[services.web]\ncommand = ["true"]\n'
    )
    out = CliRunner(env={"MEDIC_STORE": None}).invoke(
        cli, ["-c", str(conf / "medic.toml"), "runbook", "list", "--json"]
    )
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == 6


def test_real_medic_process_dry_run(tmp_path: Path) -> None:
    """`python -m medic runbook run --dry-run` in a real process, from the repo root as in the docs."""
    store = tmp_path / "demo-store"
    subprocess.run([sys.executable, str(STORECTL), "init", str(store)], check=True)
    before = tree_hash(store)
    env = {**os.environ, "MEDIC_STORE": str(tmp_path / "m.db")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "medic",
            "runbook",
            "run",
            "restore-latest-backup",
            "--dir",
            "examples/runbooks",
            "--var",
            f"store={store}",
            "--dry-run",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "restore the newest backup: planned" in out.stdout
    assert tree_hash(store) == before


def test_every_command_in_the_docs_runs(tmp_path: Path) -> None:
    """Each command in docs/runbooks.md's shell blocks exits 0, run in order as a reader would."""
    import re

    shutil.copytree(EXAMPLES, tmp_path / "examples")
    text = (ROOT / "docs" / "runbooks.md").read_text()
    lines = [
        line
        for block in re.findall(r"```sh\n(.*?)```", text, re.S)
        for line in block.strip().splitlines()
    ]
    assert any(line.startswith("medic runbook run") for line in lines)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MEDIC_STORE", None)
    for line in lines:
        done = subprocess.run(
            line,
            shell=True,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"


def _run_on_a_terminal(argv: list[str], answer: bytes, env: dict[str, str]) -> tuple[int, str]:
    """Run argv with a real pseudo-terminal as stdin/stdout; answer the first prompt."""
    import pty
    import select
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT, env=env)
    os.close(slave)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"Run it?" in seen:
                os.write(master, answer)
                answered = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=10), seen.decode("utf-8", "replace")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize(("answer", "code", "emptied"), [(b"y\n", 0, True), (b"n\n", 1, False)])
def test_terminal_prompt_confirms_destructive_steps(
    medic: Medic, answer: bytes, code: int, emptied: bool
) -> None:
    """At a terminal, medic asks before a destructive step; yes runs it, no skips it."""
    records = medic.store / "tenants" / "tenant_b" / "records.jsonl"
    env = {**os.environ, "MEDIC_STORE": medic.db, "COLUMNS": "200"}
    argv = [
        sys.executable,
        "-m",
        "medic",
        "runbook",
        "run",
        "reset-tenant",
        "--dir",
        str(EXAMPLES / "runbooks"),
        *medic.vars,
        "--var",
        "tenant=tenant_b",
    ]
    rc, out = _run_on_a_terminal(argv, answer, env)
    assert "is destructive" in out
    assert rc == code, out
    assert (records.read_text() == "") is emptied
