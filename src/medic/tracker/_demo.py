"""A realistic, reproducible stream of failures for `medic demo` and the benchmarks.

Four services fail the way services do: a web app on SQLite (locked database,
health-check timeouts), an API fleet (connection refused to its database, 503s
from one instance), a storage service (disk full) and an asyncio worker
(KeyError on a bad payload, upstream timeouts). Each outage is an *episode*:
its failure signals, the recovery attempts medic made, and how it ended (healed
by medic, handled by a person, a false positive, or still open). Episodes are
spread over the last days so KPIs have something to say. The same seed gives the
same stream; `now` anchors it in time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from medic.events import Action, ExceptionInfo, Frame, Signal
from medic.taxonomy import Kind, Severity
from medic.tracker._tracker import Tracker

__all__ = ["DemoSummary", "Episode", "Recovery", "demo_episodes", "demo_signals", "record_demo"]

PEOPLE = ("alice", "bob", "chen", "dana")


@dataclass(frozen=True, slots=True)
class Recovery:
    action: str
    attempt: int
    started_at: datetime
    ended_at: datetime
    outcome: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Episode:
    """One outage: what was seen, what medic tried, and how it ended."""

    service: str
    dedup_key: str
    triggers: list[Signal]
    recoveries: list[Recovery] = field(default_factory=list)
    ending: str = "auto"  # auto | human | runbook | engineering | false_positive | open
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    acknowledged_at: datetime | None = None
    responder: str = "alice"
    note: str | None = None

    def follow_ups(self) -> list[Signal]:
        """The supervisor's own mitigate and resolve reports, for automatic recoveries."""
        if self.ending != "auto":
            return []
        out = []
        for action, at, text in (
            (Action.MITIGATE, self.mitigated_at, "recovery action succeeded"),
            (Action.RESOLVE, self.resolved_at, "probes pass again"),
        ):
            if at is not None:
                out.append(
                    Signal(
                        service=self.service,
                        message=text,
                        source="supervisor",
                        action=action,
                        dedup_key=self.dedup_key,
                        detected_at=at,
                        external_id=f"{self.triggers[0].external_id}:{action.value}",
                    )
                )
        return out


def _frames(*names: str, library: tuple[str, ...] = ()) -> tuple[Frame, ...]:
    """In-app frames `module.function` (outermost first), after any library frames."""
    lib = [
        Frame(n.rsplit(".", 1)[1], n.rsplit(".", 1)[0], f"{n.split('.')[0]}.py", 40 + i, False)
        for i, n in enumerate(library)
    ]
    app = [
        Frame(
            n.rsplit(".", 1)[1],
            n.rsplit(".", 1)[0],
            n.rsplit(".", 1)[0].replace(".", "/") + ".py",
            10 + 7 * i,
            True,
        )
        for i, n in enumerate(names)
    ]
    return tuple(app + lib)


# A scenario: (service, dedup key, kind, severity, signal builder, likely endings).
_Builder = Callable[[random.Random], dict[str, object]]


def _sqlite_locked(rng: random.Random) -> dict[str, object]:
    return {
        "message": f"database is locked (waited {rng.uniform(4.5, 5.5):.2f}s)",
        "exception": ExceptionInfo(
            "sqlite3.OperationalError",
            "database is locked",
            _frames("app.views.checkout", "app.db.execute", library=("sqlite3.dbapi2.execute",)),
        ),
    }


def _web_timeout(rng: random.Random) -> dict[str, object]:
    return {
        "message": f"GET http://127.0.0.1:8000/healthz timed out after {rng.choice((5, 5, 10))}.0s",
        "probe": "http",
        "reason": "timeout",
    }


def _api_refused(rng: random.Random) -> dict[str, object]:
    return {
        "message": f"connection refused: 10.0.3.{rng.randint(2, 9)}:5432 "
        f"(pool {rng.randint(1, 4)}, attempt {rng.randint(1, 3)})",
        "tags": {"instance": f"api-{rng.randint(1, 3)}", "region": "eu-1"},
    }


def _api_503(rng: random.Random) -> dict[str, object]:
    return {
        "message": f"http probe: 503 Service Unavailable from api-{rng.randint(1, 3)}:8000 "
        f"in {rng.randint(3, 900)}ms",
        "probe": "http",
        "reason": "status 503",
    }


def _disk_full(rng: random.Random) -> dict[str, object]:
    chunk = rng.randint(1000, 99999)
    return {
        "message": f"[Errno 28] No space left on device: '/var/lib/storage/chunk-{chunk}'",
        "exception": ExceptionInfo(
            "OSError",
            f"[Errno 28] No space left on device: '/var/lib/storage/chunk-{chunk}'",
            _frames("storage.api.put_object", "storage.writer.flush"),
        ),
    }


def _disk_probe(rng: random.Random) -> dict[str, object]:
    return {
        "message": f"disk usage {rng.randint(95, 99)}% on /var/lib/storage",
        "probe": "disk",
        "reason": "above 95%",
    }


def _key_error(rng: random.Random) -> dict[str, object]:
    return {
        "message": "KeyError: 'user_id'",
        "exception": ExceptionInfo(
            "KeyError",
            "'user_id'",
            _frames(
                "worker.main.run",
                "worker.handlers.process_job",
                "worker.payload.extract",
                library=("asyncio.events._run",),
            ),
        ),
        "release": rng.choice(("worker@2.3.0", "worker@2.3.1")),
    }


def _worker_timeout(rng: random.Random) -> dict[str, object]:
    return {
        "message": f"TimeoutError: upstream billing did not answer in {rng.choice((2, 3))}s",
        "exception": ExceptionInfo(
            "TimeoutError", "", _frames("worker.handlers.process_job", "worker.fetch.call_upstream")
        ),
    }


_SCENARIOS: tuple[tuple[str, Kind, Severity, _Builder, tuple[str, ...], str], ...] = (
    ("web", Kind.TIMEOUT, Severity.SEV3, _sqlite_locked, ("auto", "auto", "engineering"), "retry"),
    ("web", Kind.TIMEOUT, Severity.SEV2, _web_timeout, ("auto", "auto", "human"), "restart"),
    ("api", Kind.CONNECTION, Severity.SEV2, _api_refused, ("auto", "human", "auto"), "failover"),
    ("api", Kind.CONNECTION, Severity.SEV3, _api_503, ("auto", "false_positive"), "restart"),
    ("storage", Kind.RESOURCE, Severity.SEV1, _disk_full, ("runbook", "auto"), "restart"),
    (
        "storage",
        Kind.RESOURCE,
        Severity.SEV2,
        _disk_probe,
        ("runbook", "auto"),
        "runbook:free-disk",
    ),
    ("worker", Kind.DATA_INTEGRITY, Severity.SEV3, _key_error, ("engineering", "human"), "retry"),
    ("worker", Kind.TIMEOUT, Severity.SEV3, _worker_timeout, ("auto", "auto"), "retry"),
)


def demo_episodes(
    *, seed: int = 7, now: datetime, days: float = 7.0, episodes: int = 36
) -> Iterator[Episode]:
    """`episodes` outages spread over the `days` before `now`, oldest first; the last stays open."""
    rng = random.Random(seed)
    span = timedelta(days=days).total_seconds()
    starts = sorted(rng.uniform(0, span - 3600) for _ in range(episodes))
    base = now - timedelta(seconds=span)
    for n, offset in enumerate(starts):
        service, kind, severity, build, endings, action = rng.choice(_SCENARIOS)
        begin = base + timedelta(seconds=offset)
        ending = "open" if n == episodes - 1 else rng.choice(endings)
        yield _episode(rng, seed, n, begin, service, kind, severity, build, ending, action)


def _episode(
    rng: random.Random,
    seed: int,
    n: int,
    begin: datetime,
    service: str,
    kind: Kind,
    severity: Severity,
    build: _Builder,
    ending: str,
    action: str,
) -> Episode:
    key = f"service:{service}"
    probe_like = "probe" in build(random.Random(0))
    # Probes need three misses ten seconds apart; exceptions are seen as they happen.
    delay = 30.0 if probe_like else rng.uniform(0.2, 3.0)
    triggers: list[Signal] = []
    at = begin + timedelta(seconds=delay)
    for i in range(rng.randint(2, 9)):
        fields = build(rng)
        triggers.append(
            Signal(
                service=service,
                kind=kind,
                severity=severity,
                source="probe" if probe_like else "sentry",
                occurred_at=begin if i == 0 else at,
                detected_at=at,
                external_id=f"demo:{seed}:{n}:{i}",
                dedup_key=key,
                environment="production",
                **fields,  # type: ignore[arg-type]
            )
        )
        at += timedelta(seconds=rng.uniform(10, 90))
    recoveries: list[Recovery] = []
    start = triggers[-1].detected_at or begin
    attempts = 1 if ending == "auto" else rng.randint(1, 3)
    for attempt in range(1, attempts + 1):
        started = start + timedelta(seconds=rng.uniform(1, 5))
        ended = started + timedelta(seconds=rng.uniform(0.5, 8.0))
        won = ending == "auto" and attempt == attempts
        recoveries.append(
            Recovery(
                action,
                attempt,
                started,
                ended,
                "success" if won else rng.choice(("failure", "timeout")),
                None if won else "service still failing its probe after the action",
            )
        )
        start = ended
    if ending == "open":
        recoveries = recoveries[:1] if rng.random() < 0.5 else []
        return Episode(service, key, triggers, recoveries, ending)
    if ending == "auto":
        mitigated = start
        resolved = mitigated + timedelta(seconds=rng.uniform(30, 120))
        return Episode(service, key, triggers, recoveries, ending, mitigated, resolved)
    acked = start + timedelta(minutes=rng.uniform(1, 14))
    if ending == "false_positive":
        return Episode(
            service,
            key,
            triggers,
            recoveries,
            ending,
            acknowledged_at=acked,
            resolved_at=acked + timedelta(minutes=rng.uniform(1, 5)),
            responder=rng.choice(PEOPLE),
            note="probe flapped while the load balancer drained api-2; no user impact",
        )
    mitigated = acked + timedelta(minutes=rng.uniform(3, 40))
    resolved = mitigated + timedelta(minutes=rng.uniform(5, 90))
    notes = {
        "human": "restarted by hand after the automatic restart gave up",
        "runbook": "ran the free-disk runbook: rotated logs, pruned old chunks",
        "engineering": "hotfix deployed: guard against payloads without user_id",
    }
    return Episode(
        service,
        key,
        triggers,
        recoveries,
        ending,
        mitigated,
        resolved,
        acked,
        rng.choice(PEOPLE),
        notes.get(ending),
    )


def demo_signals(
    *, seed: int = 7, now: datetime, days: float = 7.0, episodes: int = 36
) -> Iterator[Signal]:
    """The episodes' signals alone (triggers, then medic's mitigate/resolve), for benchmarks."""
    for episode in demo_episodes(seed=seed, now=now, days=days, episodes=episodes):
        yield from episode.triggers
        yield from episode.follow_ups()


@dataclass(frozen=True, slots=True)
class DemoSummary:
    episodes: int
    signals: int
    skipped: int  # episodes already in the store (the demo is idempotent per seed)


class _ReplayClock:
    """A clock set to each episode's moment, so the record carries the episode's times."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def monotonic(self) -> float:
        return self.at.timestamp()

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.at += timedelta(seconds=max(seconds, 0.0))

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def record_demo(
    url: str, *, seed: int = 7, now: datetime | None = None, days: float = 7.0, episodes: int = 36
) -> DemoSummary:
    """Record the demo stream into the store at `url`, replaying each episode at its own time."""
    now = now or datetime.now(UTC)
    clock = _ReplayClock(now)
    signals = skipped = count = 0
    endings: dict[int, set[str]] = {}
    with Tracker(url, clock=clock) as tracker:
        for episode in demo_episodes(seed=seed, now=now, days=days, episodes=episodes):
            count += 1
            first = episode.triggers[0]
            clock.at = (first.detected_at or now) + timedelta(seconds=1)
            result = tracker.record(first)
            if result.duplicate or result.incident_id is None or result.issue_id is None:
                skipped += 1
                continue
            for signal in episode.triggers[1:]:
                clock.at = (signal.detected_at or now) + timedelta(milliseconds=50)
                tracker.record(signal)
            signals += len(episode.triggers)
            _replay(tracker, clock, episode, result.incident_id, now)
            signals += len(episode.follow_ups())
            endings.setdefault(result.issue_id, set()).add(episode.ending)
            if episode.ending == "engineering" and episode.service == "worker":
                _fix(tracker, result.issue_id, episode.responder)
        for issue_id, seen in endings.items():
            healed = seen & {"auto"}
            coverage = "covered" if seen <= {"auto", "open"} else "partial" if healed else "none"
            tracker.edit_issue(issue_id, self_healing=coverage)
    return DemoSummary(count, signals, skipped)


def _fix(tracker: Tracker, issue_id: int, who: str) -> None:
    """An engineer fills seed 000's template and resolves the issue; the next KeyError regresses it."""
    issue = tracker.issue(issue_id)
    if issue.status != "unresolved":
        return
    tracker.edit_issue(
        issue_id,
        assigned_to=who,
        category="Data integrity",
        owner="worker team",
        response_target_s=2 * 3600,
        impact="Jobs without user_id fail; their users get no invoice until replayed.",
        root_cause="billing 2.3 sends jobs without user_id; extract() assumed it present.",
        prevention="Validate payloads at the queue edge; contract test with billing.",
        related_files="worker/payload.py, worker/handlers.py",
    )
    tracker.resolve_issue(
        issue_id, actor=who, resolution="guard for missing user_id", release="worker@2.3.2"
    )


def _replay(
    tracker: Tracker, clock: _ReplayClock, ep: Episode, incident_id: int, now: datetime
) -> None:
    for r in ep.recoveries:
        tracker.record_recovery(
            incident_id,
            action=r.action,
            attempt=r.attempt,
            started_at=r.started_at,
            ended_at=r.ended_at,
            outcome=r.outcome,
            error=r.error,
            evidence={"probe": "failing" if r.outcome != "success" else "passing"},
        )
    for signal in ep.follow_ups():
        clock.at = signal.detected_at or clock.at
        tracker.record(signal)
    if ep.ending in ("auto", "open"):
        return
    # Self-healing gave up: the ladder climbs to on-call (L3), engineering fixes go to L4.
    clock.at = ep.recoveries[-1].ended_at if ep.recoveries else clock.at
    tracker.set_escalation(
        incident_id, level=2, next_at=None, message="automatic recovery failed; runbooks next"
    )
    clock.at = (ep.acknowledged_at or clock.at) - timedelta(seconds=30)
    tracker.set_escalation(incident_id, level=3, next_at=None, message=f"paged {ep.responder}")
    tracker.record_notification(
        incident_id,
        level="critical" if (ep.triggers[0].severity or 3) <= 2 else "high",
        channel="email",
        target=f"{ep.responder}@example.org",
        kind="escalated",
        delivered=True,
    )
    if ep.ending == "engineering":
        tracker.set_escalation(incident_id, level=4, next_at=None, message="needs a code fix")
    clock.at = ep.acknowledged_at or clock.at
    tracker.acknowledge(incident_id, actor=ep.responder)
    if ep.ending == "false_positive":
        clock.at = ep.resolved_at or clock.at
        tracker.cancel(incident_id, actor=ep.responder, note=ep.note)
        return
    if ep.note:
        tracker.add_note(incident_id, ep.note, actor=ep.responder)
    clock.at = ep.mitigated_at or clock.at
    tracker.mitigate(incident_id, actor=ep.responder)
    clock.at = ep.resolved_at or clock.at
    tracker.resolve(incident_id, actor=ep.responder, kind=ep.ending)
    if ep.ending in ("engineering", "runbook"):
        _postmortem(tracker, clock, ep, incident_id, now)


def _postmortem(
    tracker: Tracker, clock: _ReplayClock, ep: Episode, incident_id: int, now: datetime
) -> None:
    """People write up the outages that needed them a day later, and close the incident."""
    clock.at = (ep.resolved_at or clock.at) + timedelta(hours=20)
    if clock.at > now:
        return  # too recent: the postmortem is still to be written
    if ep.service == "worker":
        tracker.save_postmortem(
            incident_id,
            status="complete",
            authors=[ep.responder],
            root_causes="The billing service began sending jobs without user_id after its "
            "2.3 release; the worker assumed the key was always present.",
            trigger="Deploy of billing 2.3 at the start of the impact window.",
            went_well="The worker kept processing other jobs; no data was lost.",
            went_wrong="Retries cannot fix a bad payload: medic retried before paging.",
            got_lucky="The release went out during low traffic.",
        )
        tracker.add_action_item(
            incident_id,
            text="Validate job payloads at the queue edge",
            type="prevent",
            owner=ep.responder,
            tracking_url="https://tracker.example/WRK-142",
        )
        tracker.add_action_item(
            incident_id, text="Classify KeyError as not retryable", type="mitigate", owner="dana"
        )
    else:
        tracker.save_postmortem(
            incident_id,
            status="complete",
            authors=[ep.responder],
            root_causes="Chunk compaction stopped after a config change, so old chunks piled up.",
            trigger="Nightly import filled the remaining space.",
            went_well="The disk probe paged before writes failed for most users.",
            went_wrong="Restarting the service could not free space; the runbook was manual.",
            got_lucky="Backups lived on another volume.",
        )
        tracker.add_action_item(
            incident_id,
            text="Run the free-disk runbook automatically at 95%",
            type="mitigate",
            owner="chen",
        )
    tracker.close_incident(incident_id, actor=ep.responder, note="postmortem reviewed")
