"""Fixtures for checkpoint tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from ckpt_trees import make_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A fresh small tree."""
    return make_tree(tmp_path / "tree")
