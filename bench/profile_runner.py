"""Runs `walguard audit ARGS...` in this process under cProfile, then writes the profile (pstats)
to the file named by WALGUARD_BENCH_PROFILE, and what the run cost the controller to the file
named by WALGUARD_BENCH_USAGE (as bench/scale_runner.py does).

cProfile alone sees only the thread that enabled it, and the fan-out collects hosts' facts in
threads of its own: every thread started here gets a profiler of its own, and the stats are
merged. walguard's imports are profiled too. bench/controller_cpu.py starts it with the checkout
as its cwd.

The clock (WALGUARD_BENCH_PROFILE_CLOCK): `wall`, cProfile's own, cheap to read, so the profile
keeps the run's proportions; a thread waiting shows as time in its waiting call (poll, waitpid,
sleep, a lock's acquire), which is not CPU. `cpu`: each thread's own CPU time (time.thread_time),
where waiting costs nothing, but every reading is a system call, which inflates functions that
are called very often.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.getcwd())
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))

CPU_CLOCK = os.environ.get("WALGUARD_BENCH_PROFILE_CLOCK", "wall") == "cpu"
_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_thread_run = threading.Thread.run


def new_profiler() -> cProfile.Profile:
    # cProfile's own wall clock is read in C; any clock given to it is a Python call per event.
    return cProfile.Profile(time.thread_time) if CPU_CLOCK else cProfile.Profile()


def _profiled_run(self: threading.Thread) -> None:
    profiler = new_profiler()
    with _lock:
        _profiles.append(profiler)
    profiler.enable()
    try:
        _thread_run(self)
    finally:
        profiler.disable()


def main(argv: list[str]) -> int:
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    profiler = new_profiler()
    profiler.enable()
    try:
        from walguard.cli import main as walguard

        code = walguard(argv)
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    with _lock:
        for other in _profiles:
            other.create_stats()
            if getattr(other, "stats", None):
                stats.add(other)
    stats.dump_stats(os.environ["WALGUARD_BENCH_PROFILE"])
    from scale_runner import usage

    doc: dict[str, Any] = {"exit_status": code, **usage()}
    with open(os.environ["WALGUARD_BENCH_USAGE"], "w") as out:
        json.dump(doc, out)
    return int(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
