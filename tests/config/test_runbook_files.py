"""Runbook files: the shipped examples load, and bad or hostile files get errors that say where."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medic.config import load_runbook_file, load_runbooks, parse_runbook
from medic.errors import ConfigError
from medic.recovery import HttpAction, MedicAction, MedicActionName, RunAction, TcpVerify
from medic.taxonomy import Kind, Severity

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "runbooks"

GOOD = """\
name: fix-it
description: fixes it
applies_to: {service: [api], kind: timeout, severity: [SEV1, 2], fingerprint: abc}
variables: {space: default, tenant: null}
steps:
  - name: one
    context: because
    action: {run: [echo, "${space}", "${incident.id}"]}
    verify: {tcp: {host: 127.0.0.1, port: 8080}}
    timeout: 250ms
  - name: two
    context: because
    action: {medic: set_degraded, with: {service: api, feature: search, on: true}}
    destructive: true
    backup_first: true
  - name: three
    context: because
    action: {http: {method: put, url: "http://127.0.0.1:1/x?t=${tenant}", body: {a: 1}, expect_status: [200, 204]}}
"""


def write(tmp_path: Path, text: str, name: str = "rb.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def fails(tmp_path: Path, text: str, *needles: str, name: str = "rb.yaml") -> str:
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        load_runbook_file(path)
    message = str(info.value)
    assert message.startswith(str(path)), message
    for needle in needles:
        assert needle in message, message
    return message


def test_every_shipped_example_loads() -> None:
    """examples/runbooks holds seed 002's six emergency modes, all valid."""
    names = [rb.name for rb in load_runbooks(EXAMPLES)]
    assert names == [
        "move-corrupt-file-aside",
        "read-only-mode",
        "rebuild-index",
        "reset-tenant",
        "restore-latest-backup",
        "sanitise-invalid-values",
    ]
    assert all(step.verify is not None for rb in load_runbooks(EXAMPLES) for step in rb.steps[-1:])


def test_a_full_runbook_parses_into_the_model(tmp_path: Path) -> None:
    """Every field reaches the model with its type: kinds, severities, durations, actions."""
    rb = load_runbook_file(write(tmp_path, GOOD))
    assert rb.applies_to.kinds == (Kind.TIMEOUT,)
    assert rb.applies_to.severities == (Severity.SEV1, Severity.SEV2)
    assert rb.applies_to.fingerprints == ("abc",)
    assert rb.variables == {"space": "default", "tenant": None}
    one, two, three = rb.steps
    assert one.action == RunAction(("echo", "${space}", "${incident.id}"))
    assert one.verify == TcpVerify("127.0.0.1", 8080)
    assert one.timeout.total_seconds() == 0.25
    assert two.action == MedicAction(
        MedicActionName.SET_DEGRADED, {"service": "api", "feature": "search", "on": True}
    )
    assert two.destructive
    assert two.backup_first
    assert rb.destructive
    assert isinstance(three.action, HttpAction)
    assert three.action.method == "PUT"
    assert three.action.body == '{"a": 1}'
    assert three.action.expect_status == (200, 204)


def test_json_files_are_runbooks_too(tmp_path: Path) -> None:
    """A .json file with the same content loads to the same runbook."""
    import dataclasses

    import yaml

    from medic.config._runbooks import _SafeLoader

    data = yaml.load(GOOD, Loader=_SafeLoader)
    from_json = load_runbook_file(write(tmp_path, json.dumps(data), "rb.json"))
    from_yaml = load_runbook_file(write(tmp_path, GOOD))
    assert dataclasses.replace(from_json, source=None) == dataclasses.replace(
        from_yaml, source=None
    )


def test_yaml_one_one_booleans_do_not_eat_keys(tmp_path: Path) -> None:
    """A bare `on:` key stays the key "on" (YAML 1.1 would make it the boolean True)."""
    rb = load_runbook_file(write(tmp_path, GOOD))
    assert rb.steps[1].action == MedicAction(
        MedicActionName.SET_DEGRADED, {"service": "api", "feature": "search", "on": True}
    )


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("name: x\nsteps: []\n", ["steps", "non-empty list"]),
        ("name: x\nstep: []\n", ["step", "unknown key"]),
        ("steps: [{name: a, context: b, action: {run: [x]}}]\n", ["name", "is required"]),
        (
            "name: x\nsteps: [{name: a, context: b, action: {run: [x]}, destrutive: true}]\n",
            ["steps[0].destrutive", "unknown key"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {run: echo hi}}]\n",
            ["steps[0].action.run", "argv list"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {run: [echo, 3]}}]\n",
            ["steps[0].action.run[1]", "expected a string, got int"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {run: [x], http: {url: 'http://a'}}}]\n",
            ["steps[0].action", "exactly one of run, http, medic"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {medic: reboot}}]\n",
            ["steps[0].action.medic", "restart, checkpoint"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {medic: restart}}]\n",
            ["steps[0].action.with.service", "is required"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {run: [x]}, timeout: soon}]\n",
            ["steps[0].timeout", "duration like"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {run: [x]}, destructive: 'yes'}]\n",
            ["steps[0].destructive", "true or false"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {run: ['${nope}']}}]\n",
            ["steps[0].action.run[0]", "undeclared variable nope"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {http: {url: 'file:///etc/passwd'}}}]\n",
            ["steps[0].action.http.url", "http:// or https://"],
        ),
        (
            "name: x\nsteps: [{name: a, context: b, action: {run: [x]}, verify: {tcp: {host: h, port: 70000}}}]\n",
            ["steps[0].verify.tcp.port", "1 to 65535"],
        ),
        ("name: x\napplies_to: {kind: weird}\nsteps: []\n", ["applies_to.kind[0]", "weird"]),
        ("name: x\napplies_to: {severity: [SEV9]}\nsteps: []\n", ["applies_to.severity[0]"]),
        ("name: Bad Name\nsteps: []\n", ["name", "lowercase"]),
        ("name: x\nvariables: {v: '-rf'}\nsteps: []\n", ["variables.v", "plain value"]),
        ("- just\n- a list\n", ["expected a mapping, got a list"]),
        ("", ["expected a mapping, got null"]),
    ],
)
def test_bad_files_name_the_file_key_path_and_expectation(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    """Each mistake is one ConfigError naming the file, where in it, and what was expected."""
    fails(tmp_path, text, *needles)


def test_python_object_tags_are_refused(tmp_path: Path) -> None:
    """`!!python/object` and friends never build objects: safe_load rules only."""
    fails(
        tmp_path,
        "name: !!python/object/apply:os.system ['touch pwned']\nsteps: []\n",
        "not valid YAML",
        "python/object",
    )
    assert not Path("pwned").exists()


def test_aliases_are_refused(tmp_path: Path) -> None:
    """YAML aliases (the billion-laughs expansion) are refused outright."""
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    fails(tmp_path, bomb, "aliases")


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    """A key written twice is an error in YAML and JSON, not a silent last-one-wins."""
    fails(tmp_path, "name: x\nname: y\nsteps: []\n", "duplicate key 'name'")
    fails(tmp_path, '{"name": "x", "name": "y", "steps": []}', "duplicate key", name="rb.json")


@pytest.mark.parametrize("name", ["deep.yaml", "deep.json"])
def test_deep_nesting_is_a_clear_error(tmp_path: Path, name: str) -> None:
    """Thousands of nested brackets give an error, not a RecursionError traceback."""
    depth = 20_000
    fails(tmp_path, "[" * depth + "]" * depth, name=name)


def test_huge_files_are_refused_before_parsing(tmp_path: Path) -> None:
    """A file over the size limit is refused without being read whole."""
    fails(tmp_path, "name: x\n" + "#" * 400_000 + "\n", "larger than")


def test_non_utf8_and_missing_files(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, and files that do not exist, get one clear line."""
    path = tmp_path / "bin.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_runbook_file(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_runbook_file(tmp_path / "absent.yaml")


def test_two_files_with_one_name_are_an_error(tmp_path: Path) -> None:
    """Runbook names are unique across the folder; the error names both files."""
    body = "name: same\nsteps: [{name: a, context: b, action: {run: ['true']}}]\n"
    write(tmp_path, body, "a.yaml")
    write(tmp_path, body, "b.yml")
    with pytest.raises(ConfigError, match=r"b\.yml.*also defined in .*a\.yaml"):
        load_runbooks(tmp_path)


def test_parse_runbook_names_the_source() -> None:
    """Data parsed in memory is blamed on the source it was given."""
    with pytest.raises(ConfigError, match=r"^api-payload:steps"):
        parse_runbook({"name": "x", "steps": "no"}, source="api-payload")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
_keys = st.sampled_from(
    ["name", "steps", "action", "run", "http", "medic", "with", "verify", "timeout", "context", "x"]
)
_shaped = st.fixed_dictionaries(
    {"name": st.just("x"), "steps": st.lists(st.dictionaries(_keys, _json, max_size=5), max_size=3)}
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(_json, _shaped))
def test_any_data_is_a_runbook_or_a_config_error(data: object) -> None:
    """Whatever shape parsed data has, the loader returns a Runbook or raises ConfigError."""
    message = "fuzz.yaml"
    try:
        parse_runbook(data, source="fuzz.yaml")
    except ConfigError as exc:
        message = str(exc)
    assert message.startswith("fuzz.yaml")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_runbook_or_a_config_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    """Arbitrary text in a .yaml file never escapes as anything but ConfigError."""
    path = tmp_path_factory.mktemp("fuzz") / "f.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with contextlib.suppress(ConfigError):
        load_runbook_file(path)
