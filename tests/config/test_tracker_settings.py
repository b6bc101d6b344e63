"""The config's tracker settings reach the store: severities, grouping rules, categories."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from medic.config import parse_config, tracker_settings
from medic.errors import ConfigError
from medic.events import Signal
from medic.taxonomy import Kind, Severity

BASE = """
[services.web]
command = ["python3", "-c", "pass"]
"""


def _settings(extra: str) -> object:
    return tracker_settings(parse_config(BASE + extra, path=Path("medic.toml"), env={}))


def test_severities_rules_and_categories_shape_what_is_recorded(tmp_path: Path) -> None:
    """A configured rule groups, a category assigns an owner, a severity has its targets."""
    settings = _settings(
        """
[severities.SEV2]
response = "10m"
rto = "1h"
meaning = "half the fleet is down"

[[grouping.rules]]
name = "locks"
match = { message = "*database is locked*" }
fingerprint = ["sqlite-lock"]

[categories.perf]
owner = "infra"
response = "1h"
kinds = ["timeout"]
"""
    )
    policy = settings.severity_policies[Severity.SEV2]  # type: ignore[attr-defined]
    assert (policy.response_target, policy.rto, policy.meaning) == (
        timedelta(minutes=10),
        timedelta(hours=1),
        "half the fleet is down",
    )
    assert settings.severity_policies[Severity.SEV1].rto == timedelta(minutes=30)  # type: ignore[attr-defined]
    with settings.open(str(tmp_path / "m.db")) as tracker:  # type: ignore[attr-defined]
        a = tracker.record(Signal("web", "database is locked (waited 5s)"))
        b = tracker.record(Signal("web", "oh no, database is locked again"))
        slow = tracker.record(Signal("web", "upstream slow", kind=Kind.TIMEOUT))
        assert a.issue_id == b.issue_id
        assert tracker.issue(a.issue_id).grouping_variant == "rule:locks"
        assert tracker.issue(slow.issue_id).owner == "infra"


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ('[severities.SEV9]\nresponse = "1m"\n', "severities"),
        ('[severities.SEV1]\nresponse = "soon"\n', "severities.SEV1.response"),
        ('[[grouping.rules]]\nname = "x"\nmatch = {}\n', "grouping.rules[0].match"),
        ('[[grouping.rules]]\nname = "x"\nmatch = { colour = "red" }\n', "colour"),
        ('[categories.c]\nowner = "o"\nresponse = "1h"\nkinds = ["weird"]\n', "categories.c.kinds"),
        ('[categories.c]\nresponse = "1h"\n', "categories.c.owner"),
    ],
)
def test_bad_tracker_settings_name_the_key(extra: str, where: str) -> None:
    """Each mistake is a ConfigError naming its key path."""
    with pytest.raises(ConfigError, match=where.replace("[", r"\[").replace("]", r"\]")):
        _settings(extra)
