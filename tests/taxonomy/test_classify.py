"""classify: the rule table for exceptions, HTTP statuses, exits, signals and probes."""

from __future__ import annotations

import asyncio
import errno
import json
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medic.errors import InvalidInput
from medic.taxonomy import (
    Classification,
    ExitStatus,
    HttpStatus,
    Kind,
    ProbeResult,
    Rule,
    classify,
    parse_retry_after,
    register_rule,
    rules,
    unregister_rule,
)

C, T, A, P, R, D, CF, DEP, U = (
    Kind.CONNECTION,
    Kind.TIMEOUT,
    Kind.AUTH,
    Kind.PERMISSION,
    Kind.RESOURCE,
    Kind.DATA_INTEGRITY,
    Kind.CONFIG,
    Kind.DEPENDENCY,
    Kind.UNKNOWN,
)


def _json_error() -> Exception:
    try:
        json.loads("{nope")
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


def _unicode_error() -> Exception:
    try:
        b"\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


TABLE = [
    pytest.param(ConnectionError("x"), C, True, id="ConnectionError"),
    pytest.param(ConnectionRefusedError(), C, True, id="ConnectionRefusedError"),
    pytest.param(ConnectionResetError(), C, True, id="ConnectionResetError"),
    pytest.param(BrokenPipeError(), C, True, id="BrokenPipeError"),
    pytest.param(TimeoutError(), T, True, id="TimeoutError"),
    pytest.param(socket.gaierror(-2, "Name or service not known"), C, True, id="gaierror"),
    pytest.param(OSError(errno.ENOSPC, "full"), R, False, id="ENOSPC"),
    pytest.param(OSError(errno.EMFILE, "fds"), R, True, id="EMFILE"),
    pytest.param(OSError(errno.ENFILE, "fds"), R, True, id="ENFILE"),
    pytest.param(OSError(errno.ENOMEM, "mem"), R, True, id="ENOMEM"),
    pytest.param(OSError(errno.EACCES, "no"), P, False, id="EACCES"),
    pytest.param(OSError(errno.EPERM, "no"), P, False, id="EPERM"),
    pytest.param(OSError(errno.ECONNREFUSED, "no"), C, True, id="ECONNREFUSED"),
    pytest.param(OSError(errno.ECONNRESET, "no"), C, True, id="ECONNRESET"),
    pytest.param(OSError(errno.EHOSTUNREACH, "no"), C, True, id="EHOSTUNREACH"),
    pytest.param(OSError("no errno"), U, False, id="OSError-without-errno"),
    pytest.param(_json_error(), D, False, id="JSONDecodeError"),
    pytest.param(_unicode_error(), D, False, id="UnicodeDecodeError"),
    pytest.param(PermissionError(), P, False, id="PermissionError"),
    pytest.param(asyncio.CancelledError(), U, False, id="CancelledError"),
    pytest.param(KeyboardInterrupt(), U, False, id="KeyboardInterrupt"),
    pytest.param(ValueError("x"), U, False, id="unknown"),
]


@pytest.mark.parametrize(("exc", "kind", "retryable"), TABLE)
def test_builtin_exception_rules(exc: BaseException, kind: Kind, retryable: bool) -> None:
    """Each standard-library failure gets the kind and retryability the issue specifies."""
    found = classify(exc)
    assert (found.kind, found.retryable) == (kind, retryable)
    assert found.reason


HTTP_TABLE = [
    (408, T, True),
    (429, R, True),
    (502, DEP, True),
    (503, DEP, True),
    (504, T, True),
    (401, A, False),
    (403, A, False),
    (404, DEP, False),
    (400, DEP, False),
    (500, DEP, False),
    (200, U, False),
]


@pytest.mark.parametrize(("code", "kind", "retryable"), HTTP_TABLE)
def test_http_status_rules(code: int, kind: Kind, retryable: bool) -> None:
    """408/429/502/503/504 are retryable, 401/403 are auth, other 4xx are not retryable."""
    found = classify(code)
    assert (found.kind, found.retryable) == (kind, retryable)
    assert classify(HttpStatus(code)) == found


EXIT_TABLE = [
    (ExitStatus.from_returncode(-signal.SIGKILL), R, True),
    (ExitStatus.from_returncode(128 + signal.SIGKILL), R, True),
    (ExitStatus.from_returncode(-signal.SIGSEGV), U, True),
    (ExitStatus.from_returncode(-signal.SIGTERM), U, True),
    (ExitStatus(code=78), CF, False),
    (ExitStatus(code=75), DEP, True),
    (ExitStatus(code=127), CF, False),
    (ExitStatus(code=1), U, True),
]


@pytest.mark.parametrize(("status", "kind", "retryable"), EXIT_TABLE)
def test_exit_and_signal_rules(status: ExitStatus, kind: Kind, retryable: bool) -> None:
    """A supervised child's exit code or killing signal is classified for the supervisor."""
    found = classify(status)
    assert (found.kind, found.retryable) == (kind, retryable)


def test_exit_status_reads_subprocess_and_shell_conventions() -> None:
    """A negative returncode and 128+N both mean 'killed by signal N'."""
    assert ExitStatus.from_returncode(-9) == ExitStatus(signal=9)
    assert ExitStatus.from_returncode(137).signal == 9
    assert ExitStatus.from_returncode(3) == ExitStatus(code=3)


def test_a_real_killed_child_is_classified_as_its_signal() -> None:
    """A child killed by SIGKILL reads as a resource failure (the OOM killer's signal)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    child.kill()
    found = classify(ExitStatus.from_returncode(child.wait(timeout=10)))
    assert found.kind is R
    assert "SIGKILL" in found.reason


@pytest.mark.parametrize(
    ("probe", "kind"),
    [
        (ProbeResult("timeout", probe="http"), T),
        (ProbeResult("refused", probe="tcp"), C),
        (ProbeResult("RSS"), R),
        (ProbeResult("disk"), R),
        (ProbeResult("status", status=503), DEP),
        (ProbeResult("weird"), U),
    ],
)
def test_probe_results(probe: ProbeResult, kind: Kind) -> None:
    """Probe failures use the same taxonomy (reason word, else the HTTP status)."""
    assert classify(probe).kind is kind


def test_httpx_errors_are_classified_with_status_and_retry_after() -> None:
    """httpx transport errors and status errors map to kinds; Retry-After is carried."""
    httpx = pytest.importorskip("httpx")
    request = httpx.Request("GET", "http://127.0.0.1/")
    assert classify(httpx.ConnectError("x", request=request)).kind is C
    assert classify(httpx.ReadTimeout("x", request=request)).kind is T
    response = httpx.Response(503, headers={"Retry-After": "12"}, request=request)
    found = classify(httpx.HTTPStatusError("x", request=request, response=response))
    assert (found.kind, found.retryable, found.retry_after) == (DEP, True, 12.0)
    forbidden = httpx.Response(403, request=request)
    assert classify(httpx.HTTPStatusError("x", request=request, response=forbidden)).kind is A


def test_requests_errors_win_over_their_oserror_base() -> None:
    """requests' ConnectionError subclasses OSError; the more specific rule wins."""
    requests = pytest.importorskip("requests")
    assert classify(requests.ConnectionError("x")).kind is C
    assert classify(requests.exceptions.ConnectTimeout("x")).kind is T
    response = requests.Response()
    response.status_code = 429
    response.headers["Retry-After"] = "3"
    found = classify(requests.HTTPError("x", response=response))
    assert (found.kind, found.retry_after) == (R, 3.0)


def test_aiohttp_errors() -> None:
    """aiohttp connection, timeout and response errors are classified."""
    aiohttp = pytest.importorskip("aiohttp")
    assert classify(aiohttp.ServerDisconnectedError()).kind is C
    assert classify(aiohttp.ServerTimeoutError()).kind is T
    err = aiohttp.ClientResponseError(None, (), status=502)  # type: ignore[arg-type]
    assert (classify(err).kind, classify(err).retryable) == (DEP, True)


def test_redis_errors() -> None:
    """redis-py errors: connection, timeout, auth, loading."""
    redis = pytest.importorskip("redis")
    assert classify(redis.ConnectionError("x")).kind is C
    assert classify(redis.TimeoutError("x")).kind is T
    assert classify(redis.exceptions.AuthenticationError("x")).kind is A
    assert classify(redis.exceptions.BusyLoadingError("x")).retryable


def test_psycopg_and_sqlalchemy_errors_against_the_real_database(postgres_url: str) -> None:
    """A real unique violation and a real refused connection, through psycopg and SQLAlchemy."""
    psycopg = pytest.importorskip("psycopg")
    sa = pytest.importorskip("sqlalchemy")
    dsn = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (id int primary key)")
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(psycopg.errors.UniqueViolation) as caught:
            conn.execute("INSERT INTO t VALUES (1)")
        assert (classify(caught.value).kind, classify(caught.value).retryable) == (D, False)
    with pytest.raises(psycopg.OperationalError) as refused:
        psycopg.connect("postgresql://postgres@127.0.0.1:1/test", connect_timeout=2)
    assert (classify(refused.value).kind, classify(refused.value).retryable) == (C, True)
    engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:1/test")
    with pytest.raises(sa.exc.OperationalError) as wrapped:
        engine.connect()
    assert classify(wrapped.value).kind is C
    engine.dispose()


def test_user_rule_overrides_builtin_and_can_be_removed() -> None:
    """A user rule for a key goes ahead of the built-in one, through the same mechanism."""
    mine = register_rule(Rule("mine", "http", 404, Classification(CF, False, reason="bad URL")))
    try:
        assert classify(404).kind is CF
        assert mine in rules()
    finally:
        unregister_rule(mine)
    assert classify(404).kind is DEP


def test_user_rule_for_own_exception_and_declining_rule() -> None:
    """A rule may decline (return None) so the next rule up the MRO answers."""

    class Flaky(ConnectionError):
        pass

    declined = register_rule(Rule("decline", "exception", Flaky, lambda exc: None))
    try:
        assert classify(Flaky()).kind is C
    finally:
        unregister_rule(declined)


def test_bad_rules_and_subjects_are_refused() -> None:
    """Hostile input gets a clear InvalidInput, never a silent no-op."""
    with pytest.raises(InvalidInput):
        Rule("x", "exception", "NoDot", Classification(U, False))
    with pytest.raises(InvalidInput):
        Rule("x", "signal", "SIGNOPE", Classification(U, False))
    with pytest.raises(InvalidInput):
        classify("503")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        classify(True)  # type: ignore[arg-type]


def test_exception_groups_report_the_worst_member() -> None:
    """A group with a non-retryable member is not retryable."""
    group = ExceptionGroup("g", [ConnectionError(), OSError(errno.ENOSPC, "full")])
    assert classify(group).kind is R
    assert classify(ExceptionGroup("g", [TimeoutError()])).kind is T


def test_retry_after_attribute_is_carried() -> None:
    """Any exception with a numeric retry_after attribute passes it on."""

    class Throttled(ConnectionError):
        retry_after = 4

    assert classify(Throttled()).retry_after == 4.0


def test_parse_retry_after_seconds_dates_and_garbage() -> None:
    """Seconds and HTTP dates parse; garbage is None; extremes are clamped."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7", now=now) == 7.0
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30.0
    assert parse_retry_after("-5", now=now) == 0.0
    assert parse_retry_after("1e12", now=now) == 86_400.0
    for junk in ("", None, "soon", "nan", "Mon, 99 Foo"):
        assert parse_retry_after(junk, now=now) is None


@given(st.text(max_size=60))
def test_parse_retry_after_never_raises(text: str) -> None:
    """Whatever a server sends, parsing Retry-After returns None or a bounded number."""
    value = parse_retry_after(text)
    assert value is None or 0.0 <= value <= 86_400.0


def test_import_taxonomy_imports_no_client_library() -> None:
    """The kernel's rules for third-party errors import none of those packages."""
    code = (
        "import sys, medic.taxonomy;"
        "print([m for m in ('httpx','requests','aiohttp','sqlalchemy','psycopg','redis') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_class_caches_stay_bounded() -> None:
    """Classifying errors of thousands of run-time classes does not grow the caches forever."""
    from medic.taxonomy import _classify

    for i in range(5000):
        classify(type(f"E{i}", (ConnectionError,), {})())
    assert len(_classify._mro_cache) <= _classify._MAX_CACHED_CLASSES
    assert len(_classify._fixed_cache) <= _classify._MAX_CACHED_CLASSES + 1
