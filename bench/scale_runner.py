"""Runs `walguard audit ARGS...` in this process, then writes what it cost the controller to the
JSON file named by WALGUARD_BENCH_USAGE: the CPU of this process (the controller's Python, with
its threads) apart from that of its children (ssh processes; xdist workers with theirs), and
this process's peak RSS. bench/scale.py and bench/controller_cpu.py start it with the checkout to
measure as its cwd.

It also marks the run's phases (`phases`: the CPU, own and children's, at each mark): when the
fan-out's collection of every host's facts starts and ends (walguard.audit.prefetch.prefetch),
and when writing the run's files starts and ends (walguard.report.writer.write_run). Before the
first mark is start-up (imports, the inventory, pytest's collection of items); between the
collection and the writing is judging (pytest running every item). Four readings in all: the
marks cost nothing measurable. An audit that runs either step more than once (or never, as with
-n, where the workers collect) marks what it runs.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import sys
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.getcwd())

from walguard.audit import prefetch
from walguard.cli import main
from walguard.report import writer

PHASES: list[tuple[str, float, float]] = []


def usage() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "self_cpu_s": own.ru_utime + own.ru_stime,
        "children_cpu_s": kids.ru_utime + kids.ru_stime,
        "self_maxrss_mb": own.ru_maxrss / 1024,
    }


def mark(name: str) -> None:
    now = usage()
    PHASES.append((name, now["self_cpu_s"], now["children_cpu_s"]))


def marked(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark(f"{name} starts")
        try:
            return fn(*args, **kwargs)
        finally:
            mark(f"{name} ends")

    return wrapper


if __name__ == "__main__":
    prefetch.prefetch = marked("collection", prefetch.prefetch)
    writer.write_run = marked("writing", writer.write_run)
    code = main(sys.argv[1:])
    mark("end")
    with open(os.environ["WALGUARD_BENCH_USAGE"], "w") as out:
        json.dump({"exit_status": code, **usage(), "phases": PHASES}, out)
    # Out as the `walguard` command goes out (walguard.cli.run).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
