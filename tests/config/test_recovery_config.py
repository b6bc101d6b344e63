"""`[recovery]`, a service's `recovery` plan and its `checkpoint`: parsed into plans, refused with the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medic.config import build_plan, load_config, parse_config
from medic.errors import ConfigError
from medic.recovery import Strategy
from medic.taxonomy import Kind

BASE = '[services.web]\ncommand = "sleep 100"\n'


def _plan(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "medic.toml"
    path.write_text(text)
    return build_plan(load_config(path), log_dir=None).recovery


def test_plans_come_from_the_kind_the_service_and_the_service_kind(tmp_path: Path) -> None:
    """A service list wins for every kind; a service table by kind wins for that kind."""
    settings = _plan(
        tmp_path,
        BASE + 'recovery = ["restart", { strategy = "degrade", target = "search" }]\n'
        '[services.db]\ncommand = "sleep 100"\n'
        'recovery = { data_integrity = ["rollback", "restore"] }\n'
        '[recovery]\nplans = { connection = ["retry", "restart"] }\nflap_window = "5m"\n',
    )
    assert settings.plans.plan_for("web", Kind.TIMEOUT).describe() == (
        "restart → degrade(search) → escalate"
    )
    assert settings.plans.plan_for("db", Kind.DATA_INTEGRITY).describe() == (
        "rollback → restore → escalate"
    )
    assert settings.plans.plan_for("db", Kind.CONNECTION).describe() == "retry → restart → escalate"
    assert settings.flap_window == 300


def test_a_checkpoint_resolves_beside_the_config(tmp_path: Path) -> None:
    """Relative checkpoint paths mean the config's folder, wherever medic runs from."""
    settings = _plan(tmp_path, BASE + 'checkpoint = { paths = ["data"], dbs = ["data/app.db"] }\n')
    ck = settings.checkpoints["web"]
    assert ck.paths == (str(tmp_path / "data"),)
    assert ck.dbs == (str(tmp_path / "data" / "app.db"),)


@pytest.mark.parametrize(
    ("extra", "key", "words"),
    [
        ('recovery = ["reboot"]\n', "services.web.recovery", "reboot"),
        ('recovery = ["escalate", "restart"]\n', "services.web.recovery", "escalate ends a plan"),
        (
            'recovery = [{ strategy = "restart", timeout = "1s", settle = "5s" }]\n',
            "services.web.recovery[0]",
            "settle",
        ),
        ('recovery = { sunspots = ["restart"] }\n', "services.web.recovery", "sunspots"),
        ('checkpoint = { every = "1h" }\n', "services.web.checkpoint", "paths or dbs"),
        ("[recovery]\nflap_raise_after = -1\n", "recovery.flap_raise_after", "greater than"),
        ('[recovery]\nplans = { gremlins = ["restart"] }\n', "recovery.plans", "gremlins"),
        ("[recovery]\nrestart_everything = true\n", "recovery.restart_everything", "unknown key"),
    ],
)
def test_hostile_recovery_settings_are_refused_naming_the_key(
    tmp_path: Path, extra: str, key: str, words: str
) -> None:
    """Every bad value is an error that names the file, the key and the value."""
    with pytest.raises(ConfigError) as caught:
        _plan(tmp_path, BASE + extra)
    message = str(caught.value)
    assert "medic.toml" in message
    assert key in message
    assert words in message


def test_the_recovery_example_in_the_docs_is_valid(tmp_path: Path) -> None:
    """The example under docs/configuration.md's Recovery heading parses and builds."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    part = docs[docs.index("## Recovery: `[recovery]`") : docs.index("## `runbooks`")]
    (example,) = re.findall(r"```toml\n(.*?)```", part, re.S)
    parse_config(example, path=Path("medic.toml"), env={})
    settings = _plan(tmp_path, example)
    steps = settings.plans.plan_for("web", Kind.UNKNOWN).steps
    assert [s.strategy for s in steps][:2] == [Strategy.RESTART, Strategy.DEGRADE]
