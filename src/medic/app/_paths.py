"""Where a running medic keeps its socket, pid file and logs: beside the store.

The CLI and `medic up` compute the same paths from the same `--store`/`-c`, so
`medic status` finds the medic that `medic up` started without any registry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RuntimePaths"]

_SOCKET_MAX = 100  # AF_UNIX paths are limited to 108 bytes on Linux


@dataclass(frozen=True, slots=True)
class RuntimePaths:
    """The files of one medic instance."""

    state_dir: Path

    @classmethod
    def for_store(cls, store_url: str, *, config: Path | None) -> RuntimePaths:
        """The store's directory for a SQLite file; `.medic/` beside the config otherwise."""
        value = store_url.strip()
        if value.startswith("sqlite:///"):
            value = (
                value[len("sqlite:///") - 1 :] if value.startswith("sqlite:////") else value[10:]
            )
        if "://" not in value and value != ":memory:":
            return cls(Path(value).expanduser().resolve().parent)
        base = config.resolve().parent if config is not None else Path.cwd()
        return cls(base / ".medic")

    @property
    def socket(self) -> Path:
        return self.state_dir / "medic.sock"

    @property
    def pidfile(self) -> Path:
        return self.state_dir / "medic.pid"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def daemon_log(self) -> Path:
        return self.state_dir / "medic.out"

    @property
    def run_dir(self) -> Path | None:
        """Directory for sd_notify sockets, or None when its paths would be too long."""
        run = self.state_dir / "run"
        return run if len(str(run)) + 40 < _SOCKET_MAX else None

    @staticmethod
    def checkpoints_for(config: Path | None) -> Path:
        """The checkpoint store: $MEDIC_CHECKPOINTS, else `.medic/checkpoints` beside the config.

        Computed here only, so the store `medic checkpoint`/`medic rollback` write
        to is the one `medic up` looks in for an interrupted rollback. It sits
        beside the config, not the tracker's store, so `--store` elsewhere does not
        move the checkpoints a user already has.
        """
        if env := os.environ.get("MEDIC_CHECKPOINTS"):
            return Path(env)
        base = config.resolve().parent if config is not None else Path.cwd()
        return base / ".medic" / "checkpoints"

    def socket_path_ok(self) -> bool:
        return len(str(self.socket)) < _SOCKET_MAX
