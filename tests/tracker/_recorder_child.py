"""A child process for durability tests: records signals and reports what `record` returned.

Usage: python _recorder_child.py STORE TAG COUNT BATCH
Prints the index of the last signal of each batch once `record_many` has returned.
"""

from __future__ import annotations

import sys

from medic.events import Signal
from medic.tracker import Tracker


def main() -> None:
    store, tag, count, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    services = ("web", "api", "worker", "db")
    with Tracker(store) as tracker:
        for start in range(0, count, batch):
            signals = [
                Signal(
                    services[i % 4],
                    f"request {i} failed: timeout after {i % 7}s",
                    source=tag,
                    external_id=f"{tag}-{i}",
                    dedup_key=f"{services[i % 4]}-{tag}",
                )
                for i in range(start, min(start + batch, count))
            ]
            if batch == 1:
                tracker.record(signals[0])
            else:
                tracker.record_many(signals)
            print(start + len(signals) - 1, flush=True)


if __name__ == "__main__":
    main()
