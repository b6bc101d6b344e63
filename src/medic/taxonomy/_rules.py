"""The built-in classification rules, registered through the same `register_rule` as users'.

Third-party rules name classes by their dotted path and so never import the
package they describe (see `_classify`).
"""

from __future__ import annotations

import errno
import signal as _signal
from dataclasses import replace
from typing import Any

from medic.taxonomy._classify import (
    HttpStatus,
    Rule,
    Subject,
    classify,
    parse_retry_after,
    register_rule,
    verdict,
)
from medic.taxonomy._kinds import Classification, Kind, Severity

__all__ = ["install_builtin_rules"]

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
S1, S2, S3, S4 = Severity.SEV1, Severity.SEV2, Severity.SEV3, Severity.SEV4

_ERRNO: dict[int, tuple[Kind, bool, Severity]] = {
    errno.ENOSPC: (R, False, S2),
    errno.EMFILE: (R, True, S2),
    errno.ENFILE: (R, True, S2),
    errno.ENOMEM: (R, True, S2),
    errno.EDQUOT: (R, False, S2),
    errno.EACCES: (P, False, S3),
    errno.EPERM: (P, False, S3),
    errno.EROFS: (P, False, S2),
    errno.ECONNREFUSED: (C, True, S3),
    errno.ECONNRESET: (C, True, S3),
    errno.ECONNABORTED: (C, True, S3),
    errno.EHOSTUNREACH: (C, True, S3),
    errno.ENETUNREACH: (C, True, S3),
    errno.ENETDOWN: (C, True, S3),
    errno.EPIPE: (C, True, S3),
    errno.ETIMEDOUT: (T, True, S3),
    errno.EAGAIN: (R, True, S3),
    errno.EIO: (R, False, S2),
    errno.ENOENT: (CF, False, S3),
}


def _os_error(exc: Any) -> Classification | None:
    found = _ERRNO.get(getattr(exc, "errno", None) or -1)
    if found is None:
        return None
    kind, retryable, severity = found
    return verdict(
        kind, retryable, f"OSError {errno.errorcode.get(exc.errno, exc.errno)}", severity
    )


def _http(code: Any, headers: Any, source: str) -> Classification | None:
    if not isinstance(code, int):
        return None
    retry_after = None
    if headers is not None:
        try:
            retry_after = parse_retry_after(headers.get("Retry-After"))
        except (AttributeError, TypeError):
            retry_after = None
    found = classify(HttpStatus(code, retry_after))
    return replace(found, reason=f"{source}: {found.reason}")


def _response_status(exc: Any) -> Classification | None:
    """httpx.HTTPStatusError and requests.HTTPError carry the response."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    code = getattr(response, "status_code", None)
    return _http(code, getattr(response, "headers", None), type(exc).__name__)


def _aiohttp_status(exc: Any) -> Classification | None:
    return _http(getattr(exc, "status", None), getattr(exc, "headers", None), type(exc).__name__)


def _sqlalchemy(default: Classification) -> Any:
    """SQLAlchemy wraps the driver's error: classify the driver's error first."""

    def handler(exc: Any) -> Classification | None:
        if getattr(exc, "connection_invalidated", False):
            return verdict(C, True, "database connection invalidated")
        orig = getattr(exc, "orig", None)
        if isinstance(orig, BaseException):
            inner = classify(orig)
            if inner.kind is not U:
                return inner
        return default

    return handler


# SQLSTATE classes and codes (PostgreSQL appendix A) → what they mean for recovery.
_SQLSTATE: dict[str, tuple[Kind, bool, Severity, str]] = {
    "08": (C, True, S3, "connection exception"),
    "28": (A, False, S3, "invalid authorization"),
    "42501": (P, False, S3, "insufficient privilege"),
    "42": (CF, False, S3, "syntax error or undefined object"),
    "23": (D, False, S3, "integrity constraint violation"),
    "22": (D, False, S3, "data exception"),
    "40001": (D, True, S3, "serialization failure: retry the transaction"),
    "40P01": (D, True, S3, "deadlock detected: retry the transaction"),
    "53300": (R, True, S2, "too many connections"),
    "53": (R, False, S2, "insufficient resources"),
    "57014": (T, True, S3, "query canceled (statement timeout)"),
    "57P01": (C, True, S3, "server shutting down"),
    "57P02": (C, True, S3, "server crashed"),
    "57P03": (DEP, True, S3, "server starting up"),
    "3D": (CF, False, S3, "database does not exist"),
}


def _psycopg(exc: Any) -> Classification | None:
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and state:
        found = _SQLSTATE.get(state) or _SQLSTATE.get(state[:2])
        if found is not None:
            kind, retryable, severity, reason = found
            return verdict(kind, retryable, f"SQLSTATE {state}: {reason}", severity)
    if type(exc).__name__ in {"OperationalError", "InterfaceError"}:
        return verdict(C, True, "database connection failed")
    return None


def _v(kind: Kind, retryable: bool, reason: str, severity: Severity = S3) -> Classification:
    return verdict(kind, retryable, reason, severity)


_EXCEPTIONS: dict[str, Any] = {
    # the standard library
    "builtins.OSError": _os_error,
    "builtins.ConnectionError": _v(C, True, "connection failed"),
    "builtins.ConnectionRefusedError": _v(C, True, "connection refused"),
    "builtins.ConnectionResetError": _v(C, True, "connection reset"),
    "builtins.BrokenPipeError": _v(C, True, "broken pipe"),
    "builtins.TimeoutError": _v(T, True, "timed out"),
    "builtins.PermissionError": _v(P, False, "permission denied"),
    "builtins.FileNotFoundError": _v(CF, False, "file not found"),
    "builtins.MemoryError": _v(R, False, "out of memory", S2),
    "builtins.UnicodeDecodeError": _v(D, False, "undecodable text"),
    "builtins.UnicodeEncodeError": _v(D, False, "unencodable text"),
    "json.decoder.JSONDecodeError": _v(D, False, "invalid JSON"),
    "socket.gaierror": _v(C, True, "name resolution failed"),
    "ssl.SSLCertVerificationError": _v(CF, False, "TLS certificate rejected"),
    "asyncio.exceptions.CancelledError": _v(U, False, "cancelled"),
    "builtins.KeyboardInterrupt": _v(U, False, "interrupted"),
    "builtins.SystemExit": _v(U, False, "exiting"),
    "medic.errors.ConfigError": _v(CF, False, "invalid configuration"),
    "medic.errors.StoreUnavailable": _v(DEP, True, "the store is unavailable", S2),
    "medic.errors.EnvironmentFault": _v(DEP, True, "the environment failed"),
    # httpx
    "httpx.TimeoutException": _v(T, True, "httpx timeout"),
    "httpx.NetworkError": _v(C, True, "httpx network error"),
    "httpx.RemoteProtocolError": _v(C, True, "server broke the HTTP protocol"),
    "httpx.HTTPStatusError": _response_status,
    "httpx.DecodingError": _v(D, False, "undecodable HTTP body"),
    "httpx.TooManyRedirects": _v(CF, False, "too many redirects"),
    "httpx.UnsupportedProtocol": _v(CF, False, "unsupported URL scheme"),
    "httpx.InvalidURL": _v(CF, False, "invalid URL"),
    # requests
    "requests.exceptions.ConnectTimeout": _v(T, True, "requests connect timeout"),
    "requests.exceptions.Timeout": _v(T, True, "requests timeout"),
    "requests.exceptions.SSLError": _v(CF, False, "TLS handshake failed"),
    "requests.exceptions.ProxyError": _v(C, True, "proxy failed"),
    "requests.exceptions.ConnectionError": _v(C, True, "requests connection error"),
    "requests.exceptions.ChunkedEncodingError": _v(C, True, "response cut short"),
    "requests.exceptions.HTTPError": _response_status,
    "requests.exceptions.InvalidJSONError": _v(D, False, "invalid JSON"),
    "requests.exceptions.ContentDecodingError": _v(D, False, "undecodable HTTP body"),
    "requests.exceptions.TooManyRedirects": _v(CF, False, "too many redirects"),
    "requests.exceptions.InvalidURL": _v(CF, False, "invalid URL"),
    "requests.exceptions.MissingSchema": _v(CF, False, "URL without scheme"),
    # aiohttp
    "aiohttp.client_exceptions.ServerTimeoutError": _v(T, True, "aiohttp timeout"),
    "aiohttp.client_exceptions.ClientConnectorCertificateError": _v(
        CF, False, "TLS certificate rejected"
    ),
    "aiohttp.client_exceptions.ClientConnectionError": _v(C, True, "aiohttp connection error"),
    "aiohttp.client_exceptions.ContentTypeError": _v(D, False, "unexpected content type"),
    "aiohttp.client_exceptions.ClientResponseError": _aiohttp_status,
    "aiohttp.client_exceptions.ClientPayloadError": _v(D, True, "response body cut short"),
    "aiohttp.client_exceptions.InvalidURL": _v(CF, False, "invalid URL"),
    # SQLAlchemy
    "sqlalchemy.exc.DisconnectionError": _v(C, True, "database disconnected"),
    "sqlalchemy.exc.TimeoutError": _v(R, True, "connection pool exhausted", S2),
    "sqlalchemy.exc.OperationalError": _sqlalchemy(_v(DEP, True, "database operational error")),
    "sqlalchemy.exc.InterfaceError": _sqlalchemy(_v(C, True, "database interface error")),
    "sqlalchemy.exc.IntegrityError": _sqlalchemy(_v(D, False, "integrity constraint violated")),
    "sqlalchemy.exc.DataError": _sqlalchemy(_v(D, False, "invalid data for the database")),
    "sqlalchemy.exc.ProgrammingError": _sqlalchemy(_v(CF, False, "invalid SQL or schema")),
    "sqlalchemy.exc.ArgumentError": _v(CF, False, "invalid SQLAlchemy argument"),
    # psycopg 3
    "psycopg.Error": _psycopg,
    # redis-py (sync and asyncio share these)
    "redis.exceptions.AuthenticationError": _v(A, False, "redis authentication failed"),
    "redis.exceptions.BusyLoadingError": _v(DEP, True, "redis is loading its dataset"),
    "redis.exceptions.ConnectionError": _v(C, True, "redis connection error"),
    "redis.exceptions.TimeoutError": _v(T, True, "redis timeout"),
    "redis.exceptions.ReadOnlyError": _v(DEP, True, "redis replica is read-only (failover?)"),
    "redis.exceptions.TryAgainError": _v(DEP, True, "redis cluster asks to try again"),
    "redis.exceptions.ClusterDownError": _v(DEP, True, "redis cluster is down"),
    "redis.exceptions.OutOfMemoryError": _v(R, False, "redis out of memory", S2),
    "redis.exceptions.NoPermissionError": _v(P, False, "redis ACL denied the command"),
}

_HTTP: dict[int | str, Classification] = {
    408: _v(T, True, "HTTP 408 request timeout"),
    429: _v(R, True, "HTTP 429 too many requests"),
    502: _v(DEP, True, "HTTP 502 bad gateway"),
    503: _v(DEP, True, "HTTP 503 service unavailable"),
    504: _v(T, True, "HTTP 504 gateway timeout"),
    401: _v(A, False, "HTTP 401 unauthorized"),
    403: _v(A, False, "HTTP 403 forbidden"),
    409: _v(D, False, "HTTP 409 conflict"),
    422: _v(D, False, "HTTP 422 unprocessable"),
    "4xx": _v(DEP, False, "HTTP client error: the request is wrong", S4),
    "5xx": _v(DEP, False, "HTTP server error"),
    "2xx": _v(U, False, "HTTP success is not a failure", S4),
    "3xx": _v(U, False, "HTTP redirect is not a failure", S4),
}

# sysexits.h and the shell's conventions.
_EXIT: dict[int, Classification] = {
    64: _v(CF, False, "EX_USAGE: bad command line"),
    65: _v(D, False, "EX_DATAERR: bad input data"),
    66: _v(CF, False, "EX_NOINPUT: input missing"),
    69: _v(DEP, True, "EX_UNAVAILABLE: a service is unavailable"),
    70: _v(U, True, "EX_SOFTWARE: internal software error", S2),
    71: _v(R, True, "EX_OSERR: operating system error", S2),
    73: _v(P, False, "EX_CANTCREAT: cannot create output"),
    74: _v(R, True, "EX_IOERR: input/output error", S2),
    75: _v(DEP, True, "EX_TEMPFAIL: temporary failure"),
    77: _v(P, False, "EX_NOPERM: permission denied"),
    78: _v(CF, False, "EX_CONFIG: configuration error"),
    126: _v(P, False, "command is not executable"),
    127: _v(CF, False, "command not found"),
}

_SIGNALS: dict[str, Classification] = {
    "SIGKILL": _v(R, True, "killed by SIGKILL (often the OOM killer)", S2),
    "SIGSEGV": _v(U, True, "crashed: segmentation fault", S2),
    "SIGBUS": _v(U, True, "crashed: bus error", S2),
    "SIGABRT": _v(U, True, "crashed: aborted", S2),
    "SIGILL": _v(U, True, "crashed: illegal instruction", S2),
    "SIGFPE": _v(U, True, "crashed: arithmetic error", S2),
    "SIGXCPU": _v(R, True, "CPU time limit exceeded", S2),
    "SIGXFSZ": _v(R, False, "file size limit exceeded", S2),
    "SIGTERM": _v(U, True, "terminated from outside"),
    "SIGINT": _v(U, True, "interrupted from outside"),
    "SIGHUP": _v(U, True, "hung up"),
    "SIGPIPE": _v(C, True, "broken pipe"),
}

_PROBES: dict[str, Classification] = {
    "timeout": _v(T, True, "probe timed out"),
    "refused": _v(C, True, "probe connection refused"),
    "unreachable": _v(C, True, "probe target unreachable"),
    "dns": _v(C, True, "probe name resolution failed"),
    "reset": _v(C, True, "probe connection reset"),
    "tls": _v(CF, False, "probe TLS failure"),
    "exited": _v(U, True, "process not alive", S2),
    "rss": _v(R, True, "memory over threshold", S2),
    "memory": _v(R, True, "memory over threshold", S2),
    "cpu": _v(R, True, "CPU over threshold"),
    "fds": _v(R, True, "open files over threshold", S2),
    "disk": _v(R, False, "disk over threshold", S2),
    "stale": _v(DEP, True, "file not refreshed in time"),
    "command": _v(DEP, True, "check command failed"),
    "body": _v(D, False, "unexpected response body"),
}

_installed = False


def install_builtin_rules() -> None:
    """Register medic's rules once; later user rules for the same key take precedence."""
    global _installed
    if _installed:
        return
    _installed = True
    tables: tuple[tuple[Subject, dict[Any, Any]], ...] = (
        ("exception", _EXCEPTIONS),
        ("http", _HTTP),
        ("exit", _EXIT),
        ("signal", {name: c for name, c in _SIGNALS.items() if hasattr(_signal, name)}),
        ("probe", _PROBES),
    )
    for subject, table in tables:
        for key, then in table.items():
            register_rule(Rule(f"builtin:{subject}:{key}", subject, key, then))
