"""medic.toml: durations, sizes, ${VAR}, the plan it builds, and an error for every mistake."""

from __future__ import annotations

import contextlib
import signal
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medic.config import build_plan, load_config, parse_config, parse_duration, parse_size
from medic.errors import ConfigError
from medic.health import HeartbeatCheck, HttpCheck, ProbeAction, ResourceCheck
from medic.supervisor import Readiness, RestartPolicy
from medic.taxonomy import Severity

GOOD = """
[services.db]
command = "python3 -m http.server 0"
severity = "SEV2"

[services.web]
command = ["python3", "app.py", "--port", "${PORT:-8080}"]
cwd = "app"
env = { TOKEN = "${TOKEN}" }
restart = "on-failure"
depends_on = ["db"]
on_dependency_restart = "restart"
ready = "probe"
start_timeout = "20s"
backoff = { initial = "250ms", factor = 2, max = "15m", jitter = 0.1 }
crash_loop = { max_restarts = 4, within = "1m", cooldown = "30s" }
stop = { signal = "INT", timeout = "5s" }
logs = { max_bytes = "512KB", keep = 2 }

[[services.web.probes]]
type = "http"
url = "http://127.0.0.1:8080/health"
expect_status = [200, 204]
interval = "500ms"
timeout = "250ms"
failures = 2

[[services.web.probes]]
type = "resource"
rss_max = "512MB"
action = "alert"

[services.worker]
command = "sh -c 'echo hi'"
[[services.worker.probes]]
type = "heartbeat"
path = "beat"
max_age = "15s"

[services.web2]
command = ["sleep", "60"]

[groups.front]
services = ["web", "web2"]
failback = true
"""


def test_a_full_config_becomes_specs_and_probes(tmp_path: Path) -> None:
    """Every key lands in the supervisor's and monitor's specs, with units and paths resolved."""
    path = tmp_path / "medic.toml"
    path.write_text(GOOD)
    plan = build_plan(load_config(path, env={"TOKEN": "s3cret"}), log_dir=tmp_path / "logs")
    by_name = {s.name: s for s in plan.services}
    web = by_name["web"]
    assert web.argv == ("python3", "app.py", "--port", "8080")
    assert web.cwd == tmp_path / "app"
    assert web.env == {"TOKEN": "s3cret"}
    assert web.restart is RestartPolicy.ON_FAILURE
    assert web.readiness is Readiness.PROBE
    assert web.backoff.initial == 0.25
    assert web.backoff.max == 900
    assert web.crash_loop.within == 60
    assert web.stop.signal == signal.SIGINT
    assert web.logs.max_bytes == 512 * 1024
    assert by_name["db"].argv == ("python3", "-m", "http.server", "0")
    assert by_name["worker"].argv == ("sh", "-c", "echo hi")
    probes = {(p.service, p.name): p for p in plan.probes}
    http = probes["web", "http"]
    assert isinstance(http.check, HttpCheck)
    assert http.check.expect_status == (200, 204)
    assert (http.interval, http.timeout, http.failures) == (0.5, 0.25, 2)
    resource = probes["web", "resource"]
    assert isinstance(resource.check, ResourceCheck)
    assert resource.check.rss_max == 512 * 1024**2
    assert resource.action is ProbeAction.ALERT
    beat = probes["worker", "heartbeat"].check
    assert isinstance(beat, HeartbeatCheck)
    assert beat.path == tmp_path / "beat"
    assert plan.severities["db"] is Severity.SEV2
    assert plan.groups[0].members == ("web", "web2")


BAD = [
    ("[services.web]\ncommand = 'x'\nrestrat = 'always'\n", "services.web.restrat", "unknown key"),
    ("[services.web]\nrestart = 'always'\n", "services.web.command", "required key is missing"),
    (
        "[services.web]\ncommand = 'x'\nrestart = 'sometimes'\n",
        "services.web.restart",
        "'always', 'on-failure' or 'never'",
    ),
    (
        "[services.web]\ncommand = 'x'\nstart_time = 'soon'\n",
        "services.web.start_time",
        "expected a duration",
    ),
    (
        "[services.web]\ncommand = 'x'\nstart_time = '-5s'\n",
        "services.web.start_time",
        "expected a duration",
    ),
    (
        "[services.web]\ncommand = 'x'\nlogs = { max_bytes = 'lots' }\n",
        "services.web.logs.max_bytes",
        "expected a size",
    ),
    (
        "[services.web]\ncommand = 'x'\nbackoff = { factor = 0.5 }\n",
        "services.web.backoff.factor",
        "greater than or equal to 1",
    ),
    (
        "[services.web]\ncommand = 'x'\nbackoff = { jitter = 1.5 }\n",
        "services.web.backoff.jitter",
        "less than 1",
    ),
    (
        "[services.web]\ncommand = 'x'\nstop = { signal = 'SIGNOPE' }\n",
        "services.web.stop.signal",
        "unknown signal",
    ),
    ("[services.web]\ncommand = ''\n", "services.web.command", "must not be empty"),
    (
        "[services.web]\ncommand = ['a']\nshell = true\n",
        "services.web",
        "shell = true needs command as one string",
    ),
    (
        "[services.web]\ncommand = 'x'\nready = 'probe'\n",
        "services.web",
        "needs at least one probe",
    ),
    (
        "[services.web]\ncommand = 'x'\ndepends_on = ['db']\n",
        "services.web.depends_on",
        "unknown service 'db'",
    ),
    (
        "[services.web]\ncommand = 'x'\n[[services.web.probes]]\ntype = 'ping'\n",
        "services.web.probes[0]",
        "unknown probe type 'ping'",
    ),
    (
        "[services.web]\ncommand = 'x'\n[[services.web.probes]]\ninterval = '1s'\n",
        "services.web.probes[0]",
        "probe needs a `type` key",
    ),
    (
        "[services.web]\ncommand = 'x'\n[[services.web.probes]]\ntype = 'http'\nurl = 'ftp://x'\n",
        "services.web.probes[0].url",
        "should match pattern",
    ),
    (
        "[services.web]\ncommand = 'x'\n[[services.web.probes]]\ntype = 'tcp'\nport = 70000\n",
        "services.web.probes[0].port",
        "less than or equal to 65535",
    ),
    (
        "[services.web]\ncommand = 'x'\n[[services.web.probes]]\ntype = 'tcp'\nport = 80\ntimeout = '0s'\n",
        "services.web.probes[0]",
        "greater than zero",
    ),
    (
        "[services.web]\ncommand = 'x'\n[[services.web.probes]]\ntype = 'resource'\n",
        "services.web.probes[0]",
        "needs at least one of rss_max",
    ),
    (
        "[services.web]\ncommand = 'x'\n[[services.web.probes]]\ntype = 'heartbeat'\npath = 'b'\n",
        "services.web.probes[0].max_age",
        "required key is missing",
    ),
    (
        "[services.web]\ncommand = 'x'\n[[services.web.probes]]\ntype = 'tcp'\nport = 1\naction = 'failover'\n",
        "services.web",
        "needs the service in a group",
    ),
    (
        "[services.web]\ncommand = 'x'\n[groups.g]\nservices = ['web', 'nope']\n",
        "groups.g.services",
        "unknown service 'nope'",
    ),
    (
        "[services.web]\ncommand = 'x'\n[groups.g]\nservices = ['web']\n",
        "groups.g.services",
        "at least 2 items",
    ),
    ("[services.'bad name']\ncommand = 'x'\n", "services.bad name", "should match pattern"),
    ("[medic]\nx = 1\n[services.web]\ncommand = 'x'\n", "medic", "unknown key"),
    ("", "services", "nothing to run"),
]


@pytest.mark.parametrize(
    ("text", "key", "expected"), BAD, ids=[b[1] + ":" + b[2][:20] for b in BAD]
)
def test_every_config_mistake_names_the_file_the_key_and_the_expectation(
    text: str, key: str, expected: str
) -> None:
    """The ConfigError message starts with file:key and says what was expected."""
    with pytest.raises(ConfigError) as info:
        parse_config(text, path=Path("conf/medic.toml"), env={})
    message = str(info.value)
    assert message.startswith("conf/medic.toml")
    assert key in message
    assert expected in message


def test_several_mistakes_are_reported_together() -> None:
    """Two wrong keys give one error listing both key paths."""
    text = "[services.a]\ncommand = 'x'\nrestart = 'no'\n[services.b]\ncommand = 'x'\ntypo = 1\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, path=Path("m.toml"), env={})
    assert "services.a.restart" in str(info.value)
    assert "services.b.typo: unknown key" in str(info.value)


def test_invalid_toml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    """A syntax error and a missing file both name the file."""
    with pytest.raises(ConfigError, match=r"m.toml: not valid TOML"):
        parse_config("[services\n", path=Path("m.toml"), env={})
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml")


def test_an_unset_variable_names_the_key_that_uses_it() -> None:
    """${NOPE} without a default is an error at the key path where it appears."""
    text = "[services.web]\ncommand = ['run', '${NOPE}']\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, path=Path("m.toml"), env={})
    assert "services.web.command[1]" in str(info.value)
    assert "NOPE is not set" in str(info.value)


def test_variables_expand_with_defaults_and_dollar_escapes() -> None:
    """${A}, ${B:-dflt} and $$ (a literal $) are expanded; nothing else is touched."""
    text = "[services.web]\ncommand = ['echo', '${A}', '${B:-dflt}', '$$HOME', '$PLAIN']\n"
    config = parse_config(text, path=Path("m.toml"), env={"A": "1"})
    assert config.model.services["web"].command == ["echo", "1", "dflt", "$HOME", "$PLAIN"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("5s", 5), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5s", 1.5), (3, 3)],
)
def test_durations(text: str | int, seconds: float) -> None:
    """The documented duration forms parse to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MB", 512 * 1024**2),
        ("10KB", 10240),
        ("1GiB", 1024**3),
        ("100", 100),
        (7, 7),
        ("2 mb", 2 * 1024**2),
    ],
)
def test_sizes(text: str | int, size: int) -> None:
    """The documented size forms parse to bytes (binary multiples)."""
    assert parse_size(text) == size


@given(st.text(max_size=20))
def test_duration_parser_never_crashes_on_garbage(text: str) -> None:
    """Any string either parses to a non-negative number or raises ValueError."""
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0


def test_the_demo_config_is_valid() -> None:
    """examples/demo/medic.toml passes `medic check`'s validation."""
    root = Path(__file__).resolve().parents[2]
    config = load_config(root / "examples" / "demo" / "medic.toml", env={})
    plan = build_plan(config, log_dir=None)
    assert {s.name for s in plan.services} >= {"web", "worker"}


def test_probe_names_are_unique() -> None:
    """Probe names default to their type and are made unique by index."""
    text = textwrap.dedent(
        """
        [services.w]
        command = 'x'
        [[services.w.probes]]
        type = 'tcp'
        port = 1
        [[services.w.probes]]
        type = 'tcp'
        port = 2
        """
    )
    plan = build_plan(parse_config(text, path=Path("m.toml"), env={}), log_dir=None)
    assert [p.name for p in plan.probes] == ["tcp", "tcp-1"]
