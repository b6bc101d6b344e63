"""`medic alerts test|list` from a real medic.toml, against a real SMTP server and HTTP receiver.

medic runs as a separate process, as a user runs it; the secrets live only in
its environment, and no output of it may contain one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import SMTP_PASSWORD, SMTP_USER, HttpReceiver, SmtpServer

PD_KEY = "R0uTiNgKeY-0123456789abcdef"
SLACK_PATH = "/services/T000/B000/SlackSecretXYZ"
HOOK_TOKEN = "hook-token-Secret-42"


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "medic.toml"
    path.write_text(f'[services.app]\ncommand = "sleep 1"\n\n{text}')
    return path


def medic(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MEDIC_", "PD_"))}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "medic", "-c", str(tmp_path / "medic.toml"), *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=environ,
    )  # fmt: skip


def every_channel(tmp_path: Path, smtp: SmtpServer, http: HttpReceiver) -> dict[str, str]:
    """A medic.toml with all five channel types on loopback; returns the secrets' environment."""
    (tmp_path / "ca.pem").write_bytes(smtp.ca_pem)
    script = tmp_path / "record.py"
    script.write_text(
        "import pathlib, sys\n"
        "pathlib.Path(sys.argv[1]).write_text(sys.stdin.read())\n"
    )  # fmt: skip
    write_config(
        tmp_path,
        f"""
[alerts]
link = "http://127.0.0.1:8080/incidents/{{id}}"

[alerts.channels.ops]
type = "email"
host = "127.0.0.1"
port = {smtp.port}
security = "starttls"
ca_file = "ca.pem"
username = "{SMTP_USER}"
password_env = "MEDIC_SMTP_PASSWORD"
from = "medic@example.com"
to = ["oncall@example.com"]

[alerts.channels.hook]
type = "webhook"
url = "{http.url}"
token_env = "MEDIC_HOOK_TOKEN"

[alerts.channels.chat]
type = "slack"
url_env = "MEDIC_SLACK_URL"

[alerts.channels.pager]
type = "pagerduty"
routing_key_env = "PD_ROUTING_KEY"
url = "http://127.0.0.1:{http.port}/v2/enqueue"

[alerts.channels.script]
type = "command"
argv = ["{sys.executable}", "{script}", "{tmp_path / "command.json"}"]
""",
    )
    return {
        "MEDIC_SMTP_PASSWORD": SMTP_PASSWORD,
        "MEDIC_HOOK_TOKEN": HOOK_TOKEN,
        "MEDIC_SLACK_URL": f"http://127.0.0.1:{http.port}{SLACK_PATH}",
        "PD_ROUTING_KEY": PD_KEY,
    }


def assert_no_secret(output: str, env: dict[str, str]) -> None:
    for value in (*env.values(), SLACK_PATH, "SlackSecretXYZ"):
        assert value not in output


def test_alerts_test_reaches_every_configured_channel(
    tmp_path: Path, tls_smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    """One test notice: an email over STARTTLS with login, a webhook, Slack, PagerDuty, a command."""
    env = every_channel(tmp_path, tls_smtp_server, http_receiver)
    result = medic(tmp_path, "alerts", "test", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("ops", "hook", "chat", "pager", "script"):
        assert any(line.split("│")[1:2] == [f" {name:<7} "] for line in result.stdout.splitlines())
    assert "5 sent" in result.stdout
    assert_no_secret(result.stdout + result.stderr, env)

    [mail] = tls_smtp_server.mailbox.messages
    assert tls_smtp_server.logins == [SMTP_USER]
    assert "[SEV1]" in str(mail["Subject"])
    assert "medic test notification" in str(mail["Subject"])
    assert mail["To"] == "oncall@example.com"
    by_path = {r.path: r for r in http_receiver.received}
    assert set(by_path) == {"/hook", SLACK_PATH, "/v2/enqueue"}
    hook = by_path["/hook"]
    assert hook.headers["Authorization"] == f"Bearer {HOOK_TOKEN}"
    assert hook.json()["notification"]["link"] == "http://127.0.0.1:8080/incidents/0"
    assert "medic test notification" in by_path[SLACK_PATH].json()["text"]
    event = by_path["/v2/enqueue"].json()
    assert (event["routing_key"], event["event_action"]) == (PD_KEY, "trigger")
    assert event["dedup_key"].startswith("medic-test-")
    sent = json.loads((tmp_path / "command.json").read_text())
    assert (sent["level"], sent["severity"], sent["incident_id"]) == ("critical", "SEV1", 0)


def test_a_failing_channel_fails_the_command_and_says_why(
    tmp_path: Path, tls_smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    """A wrong SMTP password and a 503 webhook: exit 1, each with its error and attempts."""
    http_receiver.default = 503
    env = every_channel(tmp_path, tls_smtp_server, http_receiver)
    env["MEDIC_SMTP_PASSWORD"] = "wrong-Password-987"
    config = tmp_path / "medic.toml"
    config.write_text(config.read_text() + '\n[alerts.retry]\nattempts = 2\ninitial = "10ms"\n')
    result = medic(tmp_path, "alerts", "test", "--json", env=env)
    assert result.returncode == 1
    rows = {row["channel"]: row for row in json.loads(result.stdout)}
    assert rows["ops"]["status"] == "failed"
    assert "SMTP 535" in rows["ops"]["error"]
    assert rows["ops"]["attempts"] == 1  # a refused login is final, not retried
    assert rows["hook"]["status"] == "failed"
    assert "HTTP 503" in rows["hook"]["error"]
    assert rows["hook"]["attempts"] == 2
    assert rows["script"]["status"] == "sent"
    assert_no_secret(result.stdout + result.stderr, env)
    assert "wrong-Password-987" not in result.stdout + result.stderr


def test_one_channel_at_a_level(
    tmp_path: Path, tls_smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    """`--channel hook` sends only there; an unknown channel is an error naming the known ones."""
    env = every_channel(tmp_path, tls_smtp_server, http_receiver)
    result = medic(tmp_path, "alerts", "test", "--channel", "hook", "--level", "low", env=env)
    assert result.returncode == 0, result.stderr
    assert [r.path for r in http_receiver.received] == ["/hook"]
    assert http_receiver.received[0].json()["notification"]["level"] == "low"
    assert tls_smtp_server.mailbox.messages == []

    wrong = medic(tmp_path, "alerts", "test", "--channel", "sms", env=env)
    assert wrong.returncode != 0
    assert "no alert channel 'sms'" in wrong.stderr
    assert "hook" in wrong.stderr


def test_a_level_routed_to_the_dashboard_only_sends_nothing(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    """`medium` goes to the dashboard by default: one recorded delivery, nothing sent, exit 0."""
    write_config(
        tmp_path, f'[alerts.channels.hook]\ntype = "webhook"\nurl = "{http_receiver.url}"\n'
    )
    result = medic(tmp_path, "alerts", "test", "--level", "medium")
    assert result.returncode == 0, result.stderr
    assert "1 recorded" in result.stdout
    assert "no channel is routed" in result.stdout
    assert http_receiver.received == []


def test_a_missing_secret_stops_test_and_check_naming_the_variable(
    tmp_path: Path, tls_smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    """The variable's name, never a value, and nothing is sent."""
    env = every_channel(tmp_path, tls_smtp_server, http_receiver)
    del env["PD_ROUTING_KEY"]
    for args in (("alerts", "test"), ("check",)):
        result = medic(tmp_path, *args, env=env)
        assert result.returncode != 0
        assert "alerts.channels.pager.routing_key_env" in result.stderr
        assert "environment variable PD_ROUTING_KEY is not set" in result.stderr
        assert_no_secret(result.stdout + result.stderr, env)
    assert http_receiver.received == []
    assert tls_smtp_server.mailbox.messages == []
    env["PD_ROUTING_KEY"] = PD_KEY
    assert "5 alert channels" in medic(tmp_path, "check", env=env).stdout


def test_alerts_list_shows_channels_and_routes_without_secrets(
    tmp_path: Path, tls_smtp_server: SmtpServer, http_receiver: HttpReceiver
) -> None:
    """Types, targets, rate limits, which variables are set; never their values."""
    env = every_channel(tmp_path, tls_smtp_server, http_receiver)
    config = tmp_path / "medic.toml"
    config.write_text(
        config.read_text().replace(
            '[alerts.channels.chat]\n', '[alerts.channels.chat]\nrate_limit = { per_minute = 6, burst = 2 }\n'
        )
        + '\n[alerts.routes]\nhigh = ["pager", "email"]\n'
    )  # fmt: skip
    del env["MEDIC_HOOK_TOKEN"]
    result = medic(tmp_path, "alerts", "list", env={**env, "COLUMNS": "300"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"oncall@example.com via 127.0.0.1:{tls_smtp_server.port}" in out
    assert "$MEDIC_SLACK_URL" in out
    assert "6/min, burst 2" in out
    assert "$MEDIC_HOOK_TOKEN (NOT SET)" in out
    assert "$PD_ROUTING_KEY (set)" in out
    assert_no_secret(out + result.stderr, env)

    data = json.loads(medic(tmp_path, "alerts", "list", "--json", env=env).stdout)
    assert data["routes"] == {
        "critical": ["ops", "hook", "chat", "pager", "script"],
        "high": ["ops", "pager"],
        "medium": [],
        "low": ["log"],
    }
    channels = {c["name"]: c for c in data["channels"]}
    assert channels["chat"]["rate_limit"] == {"per_minute": 6.0, "burst": 2}
    assert channels["pager"]["secrets"] == [{"env": "PD_ROUTING_KEY", "set": True}]
    assert data["link"] == "http://127.0.0.1:8080/incidents/{id}"
