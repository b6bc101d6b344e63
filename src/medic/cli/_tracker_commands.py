"""Commands that read and write the tracker: signals, issues, incidents, KPIs, reports."""

from __future__ import annotations
