"""`[backups.NAME]` tables: the schedules `medic up` runs, and a clear error for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from medic.checkpoint import BackupSchedule
from medic.config import build_plan, load_config, parse_config
from medic.errors import ConfigError

SERVICE = "[services.app]\ncommand = 'sleep 60'\n"


def test_backup_tables_become_schedules_with_paths_beside_the_config(tmp_path: Path) -> None:
    """Relative paths, dbs and repo resolve against the config's folder; rpo defaults to 2 × every."""
    path = tmp_path / "conf" / "medic.toml"
    path.parent.mkdir()
    path.write_text(
        SERVICE
        + """
[backups.nightly]
paths = ["data", "/srv/shared"]
dbs = ["app.db"]
repo = "../backups"
every = "1h"
keep = 3

[backups.often]
paths = ["data"]
repo = "/mnt/often"
every = "90s"
rpo = "10m"
"""
    )
    plan = build_plan(load_config(path), log_dir=None)
    nightly, often = plan.backups
    assert nightly == BackupSchedule(
        name="nightly",
        paths=(str(tmp_path / "conf" / "data"), "/srv/shared"),
        repo=str(tmp_path / "backups"),
        every_s=3600,
        keep=3,
        dbs=(str(tmp_path / "conf" / "app.db"),),
    )
    assert nightly.objective_s == 7200
    assert (often.keep, often.every_s, often.objective_s) == (7, 90, 600)


def test_a_config_without_backups_has_no_schedules(tmp_path: Path) -> None:
    """Backups are optional."""
    plan = build_plan(parse_config(SERVICE, path=tmp_path / "m.toml", env={}), log_dir=None)
    assert plan.backups == ()


BAD = [
    ("repo = 'r'\nevery = '-1h'\npaths = ['d']", "backups.b.every", "expected a duration"),
    ("repo = 'r'\nevery = '0s'\npaths = ['d']", "backups.b.every", "greater than zero"),
    ("repo = 'r'\nevery = 0\npaths = ['d']", "backups.b.every", "greater than zero"),
    ("repo = 'r'\nevery = '1h'\npaths = ['d']\nrpo = '0s'", "backups.b.rpo", "greater than zero"),
    ("repo = 'r'\nevery = '1h'\npaths = ['d']\nrpo = '30m'", "backups.b", "shorter than every"),
    ("repo = 'r'\nevery = '1h'\npaths = []", "backups.b", "needs `paths` or `dbs`"),
    ("repo = 'r'\nevery = '1h'", "backups.b", "needs `paths` or `dbs`"),
    ("repo = 'r'\nevery = '1h'\npaths = ['']", "backups.b.paths", "entry [0] is empty"),
    ("repo = 'r'\nevery = '1h'\ndbs = ['a.db', ' ']", "backups.b.dbs", "entry [1] is empty"),
    ("repo = 'r'\nevery = '1h'\npaths = 'd'", "backups.b.paths", "valid list"),
    ("repo = ''\nevery = '1h'\npaths = ['d']", "backups.b.repo", "at least 1 character"),
    ("every = '1h'\npaths = ['d']", "backups.b.repo", "required key is missing"),
    ("repo = 'r'\npaths = ['d']", "backups.b.every", "required key is missing"),
    (
        "repo = 'r'\nevery = '1h'\npaths = ['d']\nkeep = 0",
        "backups.b.keep",
        "greater than or equal to 1",
    ),
    ("repo = 'r'\nevery = '1h'\npaths = ['d']\nkep = 3", "backups.b.kep", "unknown key"),
    ("repo = 'r'\nevery = 'soon'\npaths = ['d']", "backups.b.every", "expected a duration"),
]


@pytest.mark.parametrize(
    ("body", "key", "expected"), BAD, ids=[b[1] + ":" + b[2][:24] for b in BAD]
)
def test_every_backup_mistake_names_the_key(body: str, key: str, expected: str) -> None:
    """The ConfigError starts with the file and names the key under [backups.b]."""
    with pytest.raises(ConfigError) as info:
        parse_config(f"{SERVICE}[backups.b]\n{body}\n", path=Path("conf/medic.toml"), env={})
    message = str(info.value)
    assert message.startswith("conf/medic.toml")
    assert key in message
    assert expected in message


def test_a_bad_schedule_name_is_refused() -> None:
    """Names follow the same pattern as services."""
    with pytest.raises(ConfigError, match=r"backups\.bad name.*should match pattern"):
        parse_config(
            f"{SERVICE}[backups.'bad name']\nrepo = 'r'\nevery = '1h'\npaths = ['d']\n",
            path=Path("m.toml"),
            env={},
        )


def test_two_schedules_may_not_share_a_repo(tmp_path: Path) -> None:
    """Pruning one would delete the other's snapshots, so the second one is refused by key."""
    text = (
        f"{SERVICE}[backups.a]\nrepo = 'r'\nevery = '1h'\npaths = ['d']\n"
        f"[backups.b]\nrepo = './r/'\nevery = '1d'\npaths = ['e']\n"
    )
    with pytest.raises(ConfigError) as info:
        build_plan(parse_config(text, path=tmp_path / "m.toml", env={}), log_dir=None)
    assert "backups.b.repo" in str(info.value)
    assert "already the repo of backups.a" in str(info.value)
