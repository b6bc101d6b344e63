"""A throwaway tracker store for tests of code that records into medic."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["temporary_tracker"]


@contextlib.contextmanager
def temporary_tracker(**kwargs: Any) -> Iterator[Any]:
    """Yield a `medic.tracker.Tracker` on a fresh SQLite file, deleted afterwards.

    Keyword arguments go to `Tracker` (a `clock=FakeClock()` makes timestamps exact).
    """
    from medic.tracker import Tracker  # imported here: medic.testing stays light to import

    folder = Path(tempfile.mkdtemp(prefix="medic-test-"))
    tracker = Tracker(str(folder / "medic.db"), **kwargs)
    try:
        yield tracker
    finally:
        tracker.close()
        shutil.rmtree(folder, ignore_errors=True)
