"""`[alerts]` and `[escalation]` in medic.toml: what they build, and how bad input is refused."""

from __future__ import annotations

import asyncio
import random
import re
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from medic.alerts import (
    CommandNotifier,
    EmailNotifier,
    PagerDutyNotifier,
    RateLimit,
    RetryPolicy,
    SlackNotifier,
    WebhookNotifier,
)
from medic.bus import Bus
from medic.config import AlertsPlan, Plan, build_plan, parse_config
from medic.errors import ConfigError
from medic.events import AlertLevel, Delivery, DeliveryStatus, Notification
from medic.recovery import DEFAULT_LADDER, Condition, Ladder, Level
from medic.taxonomy import Severity
from medic.testing import FakeClock

SERVICE = '[services.app]\ncommand = "sleep 1"\n'

FULL = """
[alerts]
link = "http://127.0.0.1:8080/incidents/{id}"
rate_limit = { per_minute = 60, burst = 5 }

[alerts.channels.ops]
type = "email"
host = "smtp.example.com"
security = "tls"
username = "medic"
password_env = "MEDIC_SMTP_PASSWORD"
from = "medic@example.com"
to = ["oncall@example.com", "lead@example.com"]
template = "customer"

[alerts.channels.hook]
type = "webhook"
url = "https://hooks.example.com/medic?token=abc"
headers = { X-Team = "payments" }
token_env = "HOOK_TOKEN"
rate_limit = { per_minute = 6, burst = 1 }

[alerts.channels.chat]
type = "slack"
url_env = "SLACK_WEBHOOK_URL"

[alerts.channels.pager]
type = "pagerduty"
routing_key_env = "PD_ROUTING_KEY"

[alerts.channels.script]
type = "command"
argv = ["notify-send", "medic"]
timeout = "3s"

[alerts.routes]
high = ["pager", "email"]
medium = ["chat"]

[alerts.retry]
attempts = 5
initial = "500ms"
factor = 3
max_delay = "1m"
jitter = 0

[escalation]
interval = "250ms"
enabled = false

[escalation.L1]
budget = "5m"

[escalation.L3]
budget = "10m"
repeat = 1
"""

ENV = {
    "MEDIC_SMTP_PASSWORD": "pw-Secret-123",
    "HOOK_TOKEN": "tok-Secret-456",
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/xyzSecret",
    "PD_ROUTING_KEY": "R0UT1NGKEYSECRET",
}


def plan_of(text: str, tmp_path: Path, *, check_secrets: bool = False) -> Plan:
    path = tmp_path / "medic.toml"
    path.write_text(SERVICE + text)
    config = parse_config(SERVICE + text, path=path, env={})
    return build_plan(config, log_dir=None, check_secrets=check_secrets)


def alerts_of(text: str, tmp_path: Path) -> AlertsPlan:
    return plan_of(text, tmp_path).alerts


def test_a_full_alerts_table_builds_every_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each channel type becomes its notifier with its settings; secrets stay variable names."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    alerts = alerts_of(FULL, tmp_path)
    assert [(c.name, c.type) for c in alerts.channels] == [
        ("ops", "email"), ("hook", "webhook"), ("chat", "slack"), ("pager", "pagerduty"),
        ("script", "command"),
    ]  # fmt: skip
    assert alerts.link_for(42) == "http://127.0.0.1:8080/incidents/42"
    assert alerts.retry == RetryPolicy(attempts=5, initial=0.5, factor=3, max_delay=60, jitter=0)
    assert alerts.rate_limit == RateLimit(per_minute=60, burst=5)
    assert alerts.channel("hook").rate_limit == RateLimit(per_minute=6, burst=1)
    assert alerts.channel("ops").rate_limit is None
    assert alerts.routing.routes[AlertLevel.HIGH] == ("pager", "email")
    assert alerts.routing.routes[AlertLevel.CRITICAL] == ("*",)  # unnamed levels keep defaults
    assert [s.env for s in alerts.secrets()] == list(ENV)
    assert alerts.template("customer").name == "customer"

    dispatcher = alerts.dispatcher(bus=Bus(), clock=FakeClock(), rng=random.Random(1))
    built = dispatcher.notifiers
    assert isinstance(built["ops"], EmailNotifier)
    assert (built["ops"].port, built["ops"].security.value) == (465, "tls")  # tls → 465
    assert built["ops"].recipients == ("oncall@example.com", "lead@example.com")
    assert built["ops"].template.name == "customer"
    assert isinstance(built["hook"], WebhookNotifier)
    assert built["hook"].headers == {"X-Team": "payments"}
    assert built["hook"].target == "https://hooks.example.com/medic"  # no query string
    assert isinstance(built["chat"], SlackNotifier)
    assert built["chat"].target == "$SLACK_WEBHOOK_URL"
    assert isinstance(built["pager"], PagerDutyNotifier)
    assert built["pager"].url == "https://events.pagerduty.com/v2/enqueue"
    assert isinstance(built["script"], CommandNotifier)
    assert built["script"].timeout == 3.0
    assert dispatcher.route(_note(AlertLevel.HIGH)) == ["ops", "pager"]
    text = repr(alerts) + repr(dispatcher) + "".join(map(repr, built.values()))
    for value in ENV.values():
        assert value not in text


def test_escalation_lays_configured_keys_over_seed_000s_ladder(tmp_path: Path) -> None:
    """L1's budget and L3's budget and repeat change; every other key keeps its default."""
    plan = plan_of(FULL, tmp_path)
    ladder = plan.ladder
    assert ladder == Ladder(
        (
            Level(1, "automatic recovery", timedelta(minutes=5)),
            DEFAULT_LADDER.levels[1],
            Level(3, "on-call", timedelta(minutes=10), Condition.IF_NOT_ACKNOWLEDGED, repeat=1),
            DEFAULT_LADDER.levels[3],
        )
    )
    assert plan.escalation_interval == 0.25
    assert plan.escalation_enabled is False


def test_a_shorter_ladder_and_the_response_budget(tmp_path: Path) -> None:
    """`levels = 2` stops at L2; `budget = "response"` means the severity's response target."""
    plan = plan_of(
        '[escalation]\nlevels = 2\n[escalation.L2]\nname = "team runbook"\n'
        'budget = "response"\ncondition = "if_not_acknowledged"\n',
        tmp_path,
    )
    assert plan.ladder == Ladder(
        (
            DEFAULT_LADDER.levels[0],
            Level(2, "team runbook", None, Condition.IF_NOT_ACKNOWLEDGED),
        )
    )


def test_no_alerts_table_means_log_only_and_the_default_ladder(tmp_path: Path) -> None:
    """Without `[alerts]` a notice is logged (low) or recorded, never sent anywhere."""
    plan = plan_of("", tmp_path)
    alerts = plan.alerts
    assert alerts.channels == ()
    assert alerts.link_for(7) == ""
    assert plan.ladder == DEFAULT_LADDER
    assert plan.escalation_interval == 1.0
    assert plan.escalation_enabled is True
    dispatcher = alerts.dispatcher(bus=None, clock=FakeClock())
    assert list(dispatcher.notifiers) == ["log"]
    [critical] = asyncio.run(dispatcher.dispatch(_note(AlertLevel.CRITICAL)))
    assert critical.status is DeliveryStatus.RECORDED
    [low] = asyncio.run(dispatcher.dispatch(_note(AlertLevel.LOW)))
    assert (low.channel, low.status) == ("log", DeliveryStatus.SENT)


def test_a_missing_secret_variable_is_named_at_check_time(tmp_path: Path) -> None:
    """`medic check`/`medic up` build the plan with secrets checked: the variable is named."""
    with pytest.raises(ConfigError) as caught:
        plan_of(FULL, tmp_path, check_secrets=True)
    message = str(caught.value)
    assert caught.value.key == "alerts.channels.ops.password_env"
    assert "environment variable MEDIC_SMTP_PASSWORD is not set" in message
    assert "HOOK_TOKEN" in message
    assert "PD_ROUTING_KEY" in message


def test_the_dispatcher_refuses_to_start_without_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan built without the check still stops at `dispatcher()` when a variable is unset."""
    alerts = alerts_of(FULL, tmp_path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PD_ROUTING_KEY")
    with pytest.raises(ConfigError, match="PD_ROUTING_KEY is not set"):
        alerts.dispatcher(bus=None, clock=FakeClock())


def test_deliveries_of_a_configured_dispatcher_reach_the_bus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bus the app injects gets every Delivery (the app records them in the tracker)."""
    script = tmp_path / "ok.py"
    script.write_text("import sys; sys.stdin.read()\n")
    alerts = alerts_of(
        f'[alerts.channels.run]\ntype = "command"\nargv = ["{sys.executable}", "{script}"]\n',
        tmp_path,
    )
    bus = Bus()
    seen = bus.subscribe(Delivery)
    [delivery] = asyncio.run(alerts.dispatcher(bus=bus).dispatch(_note(AlertLevel.CRITICAL)))
    assert (delivery.channel, delivery.status, delivery.attempts) == ("run", "sent", 1)
    assert seen.drain() == [delivery]


HOSTILE = [
    # (config text, the key path the error names)
    ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["x@y.z"]\nport = 70000\n',
     "alerts.channels.ops.port"),
    ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["x@y.z"]\nsecurity = "ssl"\n',
     "alerts.channels.ops.security"),
    ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["not an address"]\n',
     "alerts.channels.ops.to"),
    ('[alerts.channels.ops]\ntype = "email"\nhost = "h;rm -rf /"\nfrom = "a@b.c"\nto = ["x@y.z"]\n',
     "alerts.channels.ops.host"),
    ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\nto = ["x@y.z"]\n',
     "alerts.channels.ops.from"),
    ('[alerts.channels.ops]\ntype = "email"\nhost = "mail.example.com"\nsecurity = "none"\n'
     'username = "u"\npassword_env = "P"\nfrom = "a@b.c"\nto = ["x@y.z"]\n',
     "alerts.channels.ops"),
    ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\npassword_env = "P"\nfrom = "a@b.c"\nto = ["x@y.z"]\n',
     "alerts.channels.ops"),
    ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["x@y.z"]\ntemplate = "nope"\n',
     "alerts.channels.ops.template"),
    ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["x@y.z"]\nca_file = "missing.pem"\n',
     "alerts.channels.ops.ca_file"),
    ('[alerts.channels.x]\ntype = "sms"\n', "alerts.channels.x"),
    ('[alerts.channels.x]\nurl = "http://h"\n', "alerts.channels.x"),
    ('[alerts.channels.hook]\ntype = "webhook"\nurl = "file:///etc/passwd"\n',
     "alerts.channels.hook.url"),
    ('[alerts.channels.hook]\ntype = "webhook"\nurl = "http://h"\nheaders = { X-A = "a\\r\\nHost: evil" }\n',
     "alerts.channels.hook.headers"),
    ('[alerts.channels.hook]\ntype = "webhook"\nurl = "http://h"\nheaders = { "Bad Name" = "v" }\n',
     "alerts.channels.hook.headers"),
    ('[alerts.channels.hook]\ntype = "webhook"\nurl = "http://h"\nretries = 3\n',
     "alerts.channels.hook.retries"),
    ('[alerts.channels.hook]\ntype = "webhook"\nurl = "http://h"\ntimeout = "0s"\n',
     "alerts.channels.hook.timeout"),
    ('[alerts.channels.hook]\ntype = "webhook"\nurl = "http://h"\nrate_limit = { per_minute = 0 }\n',
     "alerts.channels.hook.rate_limit.per_minute"),
    ('[alerts.channels.chat]\ntype = "slack"\n', "alerts.channels.chat.url_env"),
    ('[alerts.channels.pd]\ntype = "pagerduty"\nrouting_key_env = "K"\nurl = "ftp://x"\n',
     "alerts.channels.pd.url"),
    ('[alerts.channels.cmd]\ntype = "command"\nargv = []\n', "alerts.channels.cmd.argv"),
    ('[alerts.channels.cmd]\ntype = "command"\nargv = ["x", ""]\n', "alerts.channels.cmd.argv[1]"),
    ('[alerts.channels.cmd]\ntype = "command"\nargv = "rm -rf /"\n', "alerts.channels.cmd.argv"),
    ('[alerts.channels.dashboard]\ntype = "command"\nargv = ["x"]\n', "alerts.channels"),
    ('[alerts.channels.email]\ntype = "command"\nargv = ["x"]\n', "alerts.channels"),
    ('[alerts.channels."../../x"]\ntype = "command"\nargv = ["x"]\n', "alerts.channels"),
    ('[alerts.routes]\nurgent = ["*"]\n', "alerts.routes.urgent"),
    ('[alerts.routes]\nhigh = ["nowhere"]\n', "alerts.routes.high"),
    ('[alerts.routes]\nhigh = "email"\n', "alerts.routes.high"),
    ('[alerts]\nlink = "javascript:alert(1)//{id}"\n', "alerts.link"),
    ('[alerts]\nlink = "http://h/{id.__class__}"\n', "alerts.link"),
    ('[alerts]\nlink = "http://h/{name}"\n', "alerts.link"),
    ('[alerts]\nlink = "http://h/{id"\n', "alerts.link"),
    ('[alerts]\nsend = true\n', "alerts.send"),
    ('[alerts.retry]\nattempts = 0\n', "alerts.retry.attempts"),
    ('[alerts.retry]\nattempts = 1000\n', "alerts.retry.attempts"),
    ('[alerts.retry]\njitter = 2\n', "alerts.retry.jitter"),
    ('[alerts.retry]\ninitial = "-1s"\n', "alerts.retry.initial"),
    ('[alerts.retry]\nfactor = 0.5\n', "alerts.retry.factor"),
    ('[alerts.rate_limit]\nburst = 0\n', "alerts.rate_limit.burst"),
    ('[alerts.templates]\ninternal = "missing.txt"\n', "alerts.templates.internal"),
    ('[alerts.templates]\n"x/y" = "t.txt"\n', "alerts.templates"),
    ('[escalation]\ninterval = "0s"\n', "escalation.interval"),
    ('[escalation]\nlevels = 5\n', "escalation.levels"),
    ('[escalation]\nlevels = 2\n[escalation.L3]\nrepeat = 1\n', "escalation"),
    ('[escalation.L5]\nname = "ceo"\n', "escalation.L5"),
    ('[escalation.L1]\nbudget = "0s"\n', "escalation.L1.budget"),
    ('[escalation.L1]\nbudget = "soon"\n', "escalation.L1.budget"),
    ('[escalation.L3]\ncondition = "if_bored"\n', "escalation.L3.condition"),
    ('[escalation.L3]\nrepeat = -1\n', "escalation.L3.repeat"),
    ('[escalation.L2]\nname = ""\n', "escalation.L2.name"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "key"), HOSTILE)
def test_hostile_alert_settings_are_refused_naming_the_key(
    text: str, key: str, tmp_path: Path
) -> None:
    """Every bad value is a ConfigError naming medic.toml and the key path to fix."""
    with pytest.raises(ConfigError) as caught:
        plan_of(text, tmp_path)
    message = str(caught.value)
    assert "medic.toml" in message
    assert key in message, message


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["x@y.z"]\n'
         'username = "u"\npassword = "hunter2-Pa55!"\n', "hunter2-Pa55!"),
        ('[alerts.channels.ops]\ntype = "email"\nhost = "h"\nfrom = "a@b.c"\nto = ["x@y.z"]\n'
         'username = "u"\npassword_env = "hunter2-Pa55!"\n', "hunter2-Pa55!"),
        ('[alerts.channels.pd]\ntype = "pagerduty"\nrouting_key = "R0UTINGKEY0123"\n',
         "R0UTINGKEY0123"),
        ('[alerts.channels.pd]\ntype = "pagerduty"\nrouting_key_env = "R0UTING KEY 0123"\n',
         "R0UTING KEY 0123"),
        ('[alerts.channels.chat]\ntype = "slack"\nurl = "https://hooks.slack.com/services/T/B/sEcReT"\n',
         "sEcReT"),
        ('[alerts.channels.chat]\ntype = "slack"\nurl_env = "https://hooks.slack.com/services/T/B/sEcReT"\n',
         "sEcReT"),
        ('[alerts.channels.h]\ntype = "webhook"\nurl = "http://h"\ntoken = "tok-sEcReT"\n',
         "tok-sEcReT"),
        ('[alerts.channels.h]\ntype = "webhook"\nurl = "http://h"\nheaders = { Authorization = "Bearer sEcReT\\n" }\n',
         "sEcReT"),
    ],
)  # fmt: skip
def test_a_secret_written_into_the_file_is_refused_without_repeating_it(
    text: str, secret: str, tmp_path: Path
) -> None:
    """A pasted password or key is an error that says which `*_env` key to use, never the value."""
    with pytest.raises(ConfigError) as caught:
        plan_of(text, tmp_path)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value.__cause__)  # not even in the chained pydantic error
    assert "alerts.channels." in str(caught.value)


def test_template_files_are_loaded_relative_to_the_config(tmp_path: Path) -> None:
    """`[alerts.templates]` replaces a shipped template with the operator's file (and its .html)."""
    folder = tmp_path / "alerting"
    folder.mkdir()
    (folder / "sev1.txt").write_text("SUBJECT: [$severity] $title\nSee $link\n")
    (folder / "sev1.html").write_text("<p>$title</p>")
    alerts = alerts_of('[alerts]\nlink = "https://m.example.com/i/{id}"\n'
                       '[alerts.templates]\ninternal = "alerting/sev1.txt"\n', tmp_path)  # fmt: skip
    rendered = alerts.template("internal").render(
        _note(AlertLevel.CRITICAL, link=alerts.link_for(9)), now=FakeClock().now()
    )
    assert rendered.subject == "[SEV1] checkout returns 503"
    assert rendered.text == "See https://m.example.com/i/9\n"
    assert rendered.html == "<p>checkout returns 503</p>"


def test_a_template_with_an_unknown_placeholder_names_the_key_and_file(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("SUBJECT: $title\n$password\n")
    with pytest.raises(ConfigError) as caught:
        alerts_of('[alerts.templates]\ncustomer = "t.txt"\n', tmp_path)
    assert "alerts.templates.customer" in str(caught.value)
    assert "t.txt" in str(caught.value)
    assert "password" in str(caught.value)


def test_the_alert_and_escalation_examples_in_the_docs_are_valid() -> None:
    """Every TOML example in docs/configuration.md's alerts and escalation sections parses."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    part = docs[docs.index("## Alerts: `[alerts]`") : docs.index("## Recovery: `[recovery]`")]
    examples = re.findall(r"```toml\n(.*?)```", part, re.S)
    assert len(examples) == 2
    for example in examples:
        parse_config(SERVICE + example, path=Path("medic.toml"), env={})


def test_the_link_fills_only_the_incident_number(tmp_path: Path) -> None:
    """`{id}` becomes the number; doubled braces stay literal braces, as in Python's format."""
    alerts = alerts_of(
        '[alerts]\nlink = "https://m.example.com/{{board}}/incidents/{id}"\n', tmp_path
    )
    assert alerts.link_for(12) == "https://m.example.com/{board}/incidents/12"


def test_too_many_channels_are_refused(tmp_path: Path) -> None:
    """The channel table is bounded (64), like every list in medic.toml."""
    text = "".join(f'[alerts.channels.c{i}]\ntype = "command"\nargv = ["x"]\n' for i in range(65))
    with pytest.raises(ConfigError, match=r"alerts\.channels"):
        plan_of(text, tmp_path)


def _note(level: AlertLevel, **fields: object) -> Notification:
    values: dict[str, object] = {
        "incident_id": 1, "title": "checkout returns 503", "service": "checkout",
        "severity": Severity.SEV1, "level": level,
    }  # fmt: skip
    values.update(fields)
    return Notification(**values)  # type: ignore[arg-type]
