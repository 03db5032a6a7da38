"""Scale benchmark: an estate of N hosts audited end to end from this machine, for N = 100, 300
and 1,000 in one run, beside the old way of running it (pytest-xdist workers collecting facts
lazily, one host at a time each, `-n 8`).

N names stand in front of the lab's database hosts, round robin (bench/scale_inventory.py): each
name costs the same SSH connection, collector run and PostgreSQL query as a real host. For every
run it prints the wall time, the controller's CPU per host (its Python process apart from its
children: ssh, and with -n the xdist workers), the same less what plain pytest spends on the
same number of tests with the same outcomes (pytest's own per-test cost), the CPU the lab hosts
spent (they share this machine's CPUs, so they are part of the wall time here, as separate
machines would not be), the peak memory of the run's process tree, the sizes of report.html,
results.json and junit.xml, and headless Chromium's render time of report.html. Then the same for
hosts made slow by bench/delay_relay.py, to show that wall time follows the slowest host, not
the sum. It asserts nothing about speed.

    sudo .venv/bin/python bench/scale.py [--sizes 100,300,1000] [--old-sizes 100,300]
        [--forks 10] [--old-n 8] [--old-tree CHECKOUT] [--lock FILE] [--kex-sizes 300]
        [--slow-hosts 30] [--no-render]

`--old-tree` runs the old way with another checkout's code (e.g. a worktree of an earlier
commit); by default both ways run this checkout's code. `--lock FILE` holds an flock on FILE
around each audit, for a lab that others use too.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from report import render_seconds  # noqa: E402  (bench/report.py)
from scale_baseline import pytest_cost  # noqa: E402
from scale_cpu import PeakMemory, lab_cpu_s, machine_busy_s  # noqa: E402
from scale_inventory import require_hosts, scaled_inventory  # noqa: E402

from walguard.inventory.load import VaultOptions, read_inventory  # noqa: E402

RUNNER = BENCH / "scale_runner.py"
RELAY = BENCH / "delay_relay.py"
# OpenSSH 9.2's default key exchange, sntrup761x25519-sha512 (post-quantum hybrid), costs each
# side of a connection about 0.1 s of CPU here; this one a tenth of that. A bank's SSH policy
# decides which it may use: the benchmark shows both.
CLASSICAL = "KexAlgorithms=curve25519-sha256"


@dataclass
class Run:
    way: str
    hosts: int
    wall_s: float
    exit_status: int
    self_cpu_s: float
    children_cpu_s: float
    lab_cpu_s: float
    machine_cpu_s: float
    peak_mb: float
    run_dir: Path
    doc: dict[str, Any] = field(repr=False)
    pytest_s: float = 0.0  # plain pytest's CPU for the same tests
    render_s: float | None = None

    @property
    def controller_s(self) -> float:
        return self.self_cpu_s + self.children_cpu_s

    def per_host_ms(self, seconds: float) -> float:
        return seconds / self.hosts * 1000

    def size_mb(self, name: str) -> float:
        return (self.run_dir / name).stat().st_size / 1e6

    def outcomes(self) -> Counter[str]:
        return Counter(r["result"] for h in self.doc["hosts"].values() for r in h["controls"])

    def verdicts(self) -> dict[tuple[str, str], str]:
        """Each pair's result (messages carry live values: the newest segment, clock offsets)."""
        return {
            (r["host"], r["control"]): r["result"]
            for h in self.doc["hosts"].values()
            for r in h["controls"]
        }


@contextlib.contextmanager
def held(lock: Path | None) -> Iterator[None]:
    if lock is None:
        yield
        return
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def audit(
    way: str,
    inventory: Path,
    hosts: int,
    args: list[str],
    work: Path,
    tree: Path,
    lock: Path | None,
) -> Run:
    root = work / f"reports-{hosts}-{time.monotonic_ns()}"
    usage_file = work / f"usage-{time.monotonic_ns()}.json"
    argv = [sys.executable, str(RUNNER), "audit", "--inventory", str(inventory),
            "--report-root", str(root), *args]  # fmt: skip
    env = {**os.environ, "WALGUARD_BENCH_USAGE": str(usage_file)}
    with held(lock):
        lab0, busy0, started = lab_cpu_s(), machine_busy_s(), time.monotonic()
        proc = subprocess.Popen(argv, cwd=tree, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)  # fmt: skip
        memory = PeakMemory(proc.pid)
        output, _ = proc.communicate()
        wall = time.monotonic() - started
        lab, busy = lab_cpu_s() - lab0, machine_busy_s() - busy0
    peak = memory.stop()
    runs = sorted(root.glob("*/results.json"))
    if not runs or not usage_file.is_file():
        tail = output.decode(errors="replace")[-3000:]
        raise SystemExit(f"bench: {way} at {hosts} hosts wrote no results:\n{tail}")
    usage = json.loads(usage_file.read_text())
    return Run(way, hosts, wall, int(usage["exit_status"]), usage["self_cpu_s"],
               usage["children_cpu_s"], lab, busy, peak, runs[-1].parent,
               json.loads(runs[-1].read_text()))  # fmt: skip


def print_table(runs: list[Run]) -> None:
    head = (f"{'way':24} {'hosts':>5} {'wall s':>7} {'ctl ms/host':>11} {'py':>5} {'ssh':>5} "
            f"{'-pytest':>7} {'lab ms/host':>11} {'peak MB':>7} {'html MB':>7} {'json MB':>7} "
            f"{'junit MB':>8} {'render s':>8}")  # fmt: skip
    print(head)
    for r in runs:
        beyond = r.per_host_ms(r.controller_s - r.pytest_s)
        render = f"{r.render_s:8.1f}" if r.render_s is not None else f"{'-':>8}"
        print(f"{r.way:24} {r.hosts:5d} {r.wall_s:7.1f} {r.per_host_ms(r.controller_s):11.0f} "
              f"{r.per_host_ms(r.self_cpu_s):5.0f} {r.per_host_ms(r.children_cpu_s):5.0f} "
              f"{beyond:7.0f} {r.per_host_ms(r.lab_cpu_s):11.0f} {r.peak_mb:7.0f} "
              f"{r.size_mb('report.html'):7.1f} {r.size_mb('results.json'):7.1f} "
              f"{r.size_mb('junit.xml'):8.1f} {render}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inventory", type=Path, default=ROOT / "inventories" / "lab.yml")
    ap.add_argument("--sizes", default="100,300,1000", help="hosts for the fan-out runs")
    ap.add_argument("--old-sizes", default="100,300", help="hosts for the old way ('' for none)")
    ap.add_argument("--forks", type=int, default=10, help="the fan-out's --forks")
    ap.add_argument("--old-n", type=int, default=8, help="xdist workers of the old way (-n)")
    ap.add_argument("--old-tree", type=Path, default=ROOT, help="the old way runs this checkout")
    ap.add_argument("--slow-hosts", type=int, default=30, help="hosts of the slow run (0: none)")
    ap.add_argument("--delay-ms", type=float, default=200, help="round-trip delay of a slow host")
    ap.add_argument("--kex-sizes", default="300",
                    help="hosts for fan-out runs with a classical key exchange ('' for none)")
    ap.add_argument("--lock", type=Path, default=None, help="flock this file around each audit")
    ap.add_argument("--keep", action="store_true", help="keep the run directories (by default "
                    "they are removed at the end)")  # fmt: skip
    ap.add_argument("--no-render", action="store_true",
                    help="leave out Chromium's render of each report.html")  # fmt: skip
    args = ap.parse_args()
    require_hosts(args.inventory)
    work = Path(tempfile.mkdtemp(prefix="walguard-scale-"))
    try:
        measure(args, work)
        if args.slow_hosts:
            slow_run(args, work)
    finally:
        if args.keep:
            print(f"\nrun directories kept under {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def measure(args: argparse.Namespace, work: Path) -> None:
    """Every audit of the plan, then the figures."""
    sizes = [int(n) for n in args.sizes.split(",") if n]
    old_sizes = [int(n) for n in args.old_sizes.split(",") if n]
    runs: list[Run] = []
    kex_sizes = [int(n) for n in args.kex_sizes.split(",") if n]
    fan = ["--forks", str(args.forks)]
    plan: list[tuple[str, int, list[str], Path, str | None]] = [
        (f"fan-out --forks {args.forks}", n, fan, ROOT, None) for n in sizes
    ]
    plan += [(f"old: xdist -n {args.old_n}", n, ["-n", str(args.old_n)], args.old_tree, None)
             for n in old_sizes]  # fmt: skip
    plan += [(f"fan-out, {CLASSICAL.split('=')[1]}", n, fan, ROOT, f"-o {CLASSICAL}")
             for n in kex_sizes]  # fmt: skip
    for way, n, extra, tree, ssh_args in plan:
        inventory = work / f"inventory-{n}-{len(runs)}.yml"
        scaled_inventory(args.inventory, n, inventory, ssh_args=ssh_args)
        run = audit(way, inventory, n, extra, work, tree, args.lock)
        print(f"... {way}, {n} hosts: {run.wall_s:.1f} s, exit status {run.exit_status}",
              flush=True)  # fmt: skip
        runs.append(run)
    blank = render_seconds("about:blank", work / "blank.png") if not args.no_render else None
    baselines: dict[tuple[int, tuple[tuple[str, int], ...]], float] = {}
    for run in runs:
        if blank is not None:
            page = (run.run_dir / "report.html").as_uri()
            run.render_s = render_seconds(page, work / "page.png")
        mix = tuple(sorted(run.outcomes().items()))
        if (run.hosts, mix) not in baselines:
            baselines[(run.hosts, mix)] = pytest_cost(dict(mix), work)
        run.pytest_s = baselines[(run.hosts, mix)]
    controls = len(runs[0].doc["controls"]) if runs else 0
    start_up = (f"Chromium's start-up (a blank page) {blank:.1f} s" if blank is not None
                else "report.html not rendered")  # fmt: skip
    print(f"\n{controls} controls per host; {os.cpu_count()} CPUs; {start_up}")
    print_table(runs)
    print_notes(runs, args)


def print_notes(runs: list[Run], args: argparse.Namespace) -> None:
    print("\nctl: the controller's CPU (py: its Python process with the fan-out's threads; ssh: "
          "its children, the ssh processes and, with -n, the xdist workers with theirs); -pytest: "
          "the same less plain pytest's CPU for the same number of tests with the same outcomes; "
          "lab: the lab hosts' containers, which share this machine's CPUs; peak MB: the run's "
          "process tree (PSS); render s: Chromium's screenshot of report.html, start-up "
          "included.")  # fmt: skip
    for r in runs:
        other = r.machine_cpu_s - r.controller_s - r.lab_cpu_s
        print(f"  {r.way:24} {r.hosts:5d} hosts: machine busy {r.machine_cpu_s:6.0f} CPU s = "
              f"controller {r.controller_s:5.0f} + lab hosts {r.lab_cpu_s:5.0f} + "
              f"other {other:4.0f}"
              f"; plain pytest {r.pytest_s / max(sum(r.outcomes().values()), 1) * 1000:.2f} ms "
              "per test")  # fmt: skip
    new = {r.hosts: r for r in runs if r.way.startswith("fan-out --forks")}
    old = {r.hosts: r for r in runs if r.way.startswith("old")}
    if len(new) > 1:
        small, big = min(new), max(new)
        ratio = new[big].wall_s / new[small].wall_s
        print(f"growth: {big / small:.0f}x the hosts took {ratio:.1f}x the wall time")
    kex = {r.hosts: r for r in runs if r.way.startswith("fan-out, ")}
    for n in sorted(set(new) & set(kex)):
        print(f"{n} hosts: {CLASSICAL} / the default key exchange, controller CPU "
              f"{kex[n].controller_s / new[n].controller_s:.2f}x")  # fmt: skip
    for n in sorted(set(new) & set(old)):
        same = new[n].verdicts() == old[n].verdicts()
        print(f"{n} hosts: old way / fan-out wall {old[n].wall_s / new[n].wall_s:.1f}x, controller "
              f"CPU {old[n].controller_s / new[n].controller_s:.1f}x; verdicts identical: "
              f"{'yes' if same else 'NO'}")  # fmt: skip


# The relay is the operator's ssh configuration, not the inventory's (an inventory may not name
# a ProxyCommand): a Match block for the lab's addresses, live only while the slow run's
# environment says so, so that the other runs of the benchmark go direct.
SLOW_CONFIG = Path("/etc/ssh/ssh_config.d/walguard-bench-slow.conf")
SLOW_ENV = "WALGUARD_BENCH_SLOW"


@contextlib.contextmanager
def relayed(addresses: list[str], delay_ms: float) -> Iterator[None]:
    SLOW_CONFIG.write_text(
        f"Match host {','.join(addresses)} exec \"test x${SLOW_ENV} = x1\"\n"
        f"  ProxyCommand {sys.executable} {RELAY} %h %p {delay_ms / 2:g}\n"
    )
    os.environ[SLOW_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(SLOW_ENV, None)
        SLOW_CONFIG.unlink(missing_ok=True)


def slow_run(args: argparse.Namespace, work: Path) -> None:
    """Hosts behind the delay relay: every SSH chunk held, so each host takes seconds."""
    n = args.slow_hosts
    inventory = work / f"inventory-slow-{n}.yml"
    scaled_inventory(args.inventory, n, inventory)
    targets = read_inventory(str(inventory), VaultOptions((), ())).targets
    addresses = sorted({t.address for t in targets})
    forks = max(args.forks, n)
    with relayed(addresses, args.delay_ms):
        run = audit(f"slow, --forks {forks}", inventory, n, ["--forks", str(forks)], work, ROOT,
                    args.lock)  # fmt: skip
    seconds = [h["collection"]["seconds"] for h in run.doc["hosts"].values() if h["collection"]]
    print(f"\n{n} hosts at +{args.delay_ms:g} ms per round trip (bench/delay_relay.py), "
          f"--forks {forks}: wall {run.wall_s:.1f} s; the slowest host's facts took "
          f"{max(seconds):.1f} s, all hosts' together {sum(seconds):.1f} s")  # fmt: skip

if __name__ == "__main__":
    sys.exit(main())
