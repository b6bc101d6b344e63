"""A worker that proves it is alive by touching a heartbeat file every second.

`kill -USR1 <pid>` makes it stall (still running, no more heartbeats), which is
what a stuck worker looks like from outside.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

BEAT = Path(os.environ.get("HEARTBEAT_FILE", "heartbeat"))
STALLED = {"on": False}


def main() -> None:
    signal.signal(signal.SIGUSR1, lambda *_: STALLED.update(on=True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"worker beating into {BEAT}", flush=True)
    jobs = 0
    while True:
        if not STALLED["on"]:
            BEAT.touch()
            jobs += 1
            if jobs % 10 == 0:
                print(f"processed {jobs} jobs", flush=True)
        time.sleep(1)


if __name__ == "__main__":
    main()
