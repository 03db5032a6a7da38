"""Where a benchmark run's CPU and memory go, read from /proc: the lab hosts' process trees, the
whole machine, and the peak memory of the run's own process tree.

A process tree's CPU is the sum, over its live processes, of their own time and their waited-for
children's (utime, stime, cutime, cstime): a process that ended was waited for by its parent, whose
cutime then holds it, so the difference between two readings is what the tree spent between them.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            found += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    except OSError:
        pass
    return found


def tree_cpu_s(root: int) -> float:
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
        todo += _children(pid)
    return total / TICK


def lab_cpu_s() -> float:
    """CPU the running lab hosts (their whole containers) have spent, by their process trees."""
    from walguard.lab import manage

    total = 0.0
    for host in manage.running_hosts():
        pid = host.nspawn_pid()
        if pid is not None:
            total += tree_cpu_s(pid)
    return total


def machine_busy_s() -> float:
    """CPU time every CPU of this machine has spent busy (not idle, not waiting for I/O)."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakMemory:
    """Samples the proportional set size (shared pages split between their users) of a process
    tree every `interval_s`, and keeps the largest sum: the memory the tree needed at its peak."""

    def __init__(self, root: int, interval_s: float = 0.25) -> None:
        self.root = root
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            pids, todo = [], [self.root]
            while todo:
                pid = todo.pop()
                pids.append(pid)
                todo += _children(pid)
            self.peak_mb = max(self.peak_mb, sum(_pss_mb(p) for p in pids))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb
