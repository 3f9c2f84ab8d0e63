"""`python -m trustdesk ...` with cProfile switched on and off by signals.

    SIGUSR1: start profiling the event-loop thread
    SIGUSR2: stop, and write the stats to $BENCH_CPROFILE_OUT

Used by `python -m bench.run --profiler cprofile` (the default when py-spy is not on PATH).
cProfile sees the event-loop thread only (aiosqlite runs SQLite calls in its own thread) and
slows Python code down, so read it for where the loop spends its time, not for absolute
figures.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from typing import Any

from trustdesk.cli import main

_prof = cProfile.Profile()


def _start(*_: Any) -> None:
    _prof.enable()


def _dump(*_: Any) -> None:
    _prof.disable()
    _prof.dump_stats(os.environ["BENCH_CPROFILE_OUT"])


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, _start)
    signal.signal(signal.SIGUSR2, _dump)
    main(sys.argv[1:])
