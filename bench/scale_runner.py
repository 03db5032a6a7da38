"""Runs `walguard audit ARGS...` in this process, then writes what it cost the controller to the
JSON file named by WALGUARD_BENCH_USAGE: the CPU of this process (the controller's Python, with
its threads) apart from that of its children (ssh processes; xdist workers with theirs), and
this process's peak RSS. bench/scale.py starts it with the checkout to measure as its cwd."""

from __future__ import annotations

import json
import os
import resource
import sys

sys.path.insert(0, os.getcwd())

from walguard.cli import main


def usage() -> dict[str, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "self_cpu_s": own.ru_utime + own.ru_stime,
        "children_cpu_s": kids.ru_utime + kids.ru_stime,
        "self_maxrss_mb": own.ru_maxrss / 1024,
    }


if __name__ == "__main__":
    code = main(sys.argv[1:])
    with open(os.environ["WALGUARD_BENCH_USAGE"], "w") as out:
        json.dump({"exit_status": code, **usage()}, out)
    sys.exit(code)
