"""Controller CPU benchmark: what a full audit of N inventory names costs the machine that runs
walguard, against the floor any SSH-based auditor pays, measured in the same run.

- The audit: `walguard audit --forks F` of an inventory of N names over the lab's database hosts
  (bench/scale_inventory.py, round robin; the probe hosts kept), every control.
- The floor: one bare `ssh HOST true` to each host of that inventory (the N names and the probe
  hosts, each of which the audit reaches over SSH too), with walguard's own SSH options for that
  host (`walguard.facts.transport.Connection.options`: strict host-key checking against the same
  known_hosts file, the same key, BatchMode), F at a time, as the audit goes.

CPU is user + system time of a process and of every descendant it waited for, as os.wait4
reports it when the process is reaped: for the audit, the walguard process with its threads and
its ssh children; for the floor, each ssh process. The two alternate, `--repeat` times, and the
ratio (audit / floor) is taken pair by pair, so that a drift in the machine's speed moves both;
the median pair is printed. The target is at most 1.25x at 300 names. Everything here is on one
machine: the lab hosts' own CPU is not the controller's and is not counted.

    sudo .venv/bin/python bench/controller_cpu.py [--names 300] [--forks 10] [--repeat 3]
        [--profile FILE] [--lock FILE] [--keep]

`--profile FILE` ends with one more audit under cProfile, in every thread (bench/profile_runner.py,
per-thread CPU time), not counted in the figures: the stats go to FILE and the top functions are
printed.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from scale import held  # noqa: E402
from scale_inventory import require_hosts, scaled_inventory  # noqa: E402

from walguard.facts.transport import Connection  # noqa: E402
from walguard.inventory.load import Target, VaultOptions, read_inventory  # noqa: E402

RUNNER = BENCH / "scale_runner.py"
PROFILER = BENCH / "profile_runner.py"
# walguard's own exit statuses for an audit that ran to its end: gate passed, failed controls,
# errors (README, exit codes). Anything else means the audit did not run and measures nothing.
AUDITED = (0, 1, 6)


def cpu_of(pid: int) -> tuple[int, float]:
    """Reap `pid`: its exit code and the CPU seconds (user + system) of it and its waited-for
    descendants."""
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def floor_argv(target: Target) -> list[str]:
    """`ssh ... HOST true` with the options walguard's connection to `target` uses, less the
    ControlPath: a bare connection of its own, no master."""
    conn = Connection(target)
    try:
        options = conn.options()
        at = options.index(f"ControlPath={conn.control_path}")
        del options[at - 1 : at + 1]
        return ["ssh", *options, "--", conn.destination(), "true"]
    finally:
        conn.close()


def ssh_true(argv: list[str]) -> float:
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stderr is not None
    err = proc.stderr.read()  # ssh's stderr is small; read it before reaping, as Popen would
    proc.stderr.close()
    code, cpu = cpu_of(proc.pid)
    proc.returncode = code
    if code != 0:
        # A refused connection is cheaper than a real one: the floor would be wrong.
        raise SystemExit(f"bench: {' '.join(argv[-2:])} failed ({code}): "
                         f"{err.decode(errors='replace').strip()}")  # fmt: skip
    return cpu


def floor_cpu_s(argvs: list[list[str]], forks: int) -> float:
    with ThreadPoolExecutor(max_workers=forks) as pool:
        return sum(pool.map(ssh_true, argvs))


# bench/scale_runner.py's marks, each the end of a phase of the audit.
PHASE_ENDS = {"collection starts": "start-up (imports, inventory, pytest collection)",
              "collection ends": "collecting facts (fan-out threads, ssh)",
              "writing starts": "judging (pytest runs every item)",
              "writing ends": "writing (results.json, report.html, junit.xml)",
              "end": "summary (terminal)"}  # fmt: skip


@dataclass(frozen=True)
class Audit:
    cpu_s: float  # the whole process tree, as reaped
    python_s: float  # the walguard process itself (its threads), the rest of cpu_s is ssh's
    hosts: int
    unreachable: list[str]
    exit_status: int
    phases: list[tuple[str, float, float]]  # what each phase cost: python s, ssh s


def phases_of(marks: list[tuple[str, float, float]], cpu_s: float, python_s: float
              ) -> list[tuple[str, float, float]]:  # fmt: skip
    found, own, kids = [], 0.0, 0.0
    for name, at_own, at_kids in marks:
        found.append((PHASE_ENDS.get(name, name), at_own - own, at_kids - kids))
        own, kids = at_own, at_kids
    found.append(("exit (after the last mark)", python_s - own, cpu_s - python_s - kids))
    return found


def audit_cpu(inventory: Path, forks: int, work: Path, runner: Path = RUNNER,
              env: dict[str, str] | None = None) -> Audit:  # fmt: skip
    stamp = time.monotonic_ns()
    root, usage_file, log = (work / f"reports-{stamp}", work / f"usage-{stamp}.json",
                             work / f"audit-{stamp}.log")  # fmt: skip
    argv = [sys.executable, str(runner), "audit", "--inventory", str(inventory),
            "--report-root", str(root), "--forks", str(forks)]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                env={**os.environ, **(env or {}),
                                     "WALGUARD_BENCH_USAGE": str(usage_file)})  # fmt: skip
        proc.returncode, cpu = cpu_of(proc.pid)
    runs = sorted(root.glob("*/results.json"))
    if proc.returncode not in AUDITED or not runs or not usage_file.is_file():
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"bench: the audit ended with {proc.returncode}:\n{tail}")
    usage = json.loads(usage_file.read_text())
    summary = json.loads(runs[-1].read_text())["summary"]
    # What the process spent after it wrote the usage (the interpreter's exit) is its own.
    python = cpu - usage["children_cpu_s"]
    return Audit(cpu, python, summary["hosts"], summary["unreachable"], proc.returncode,
                 phases_of(usage.get("phases", []), cpu, python))  # fmt: skip


# Where a thread waits (for ssh, for the database, for another thread): time under the wall
# clock, not CPU (psycopg's wait() too). Left out of the list of where the time goes, and summed
# apart. Under the wall clock a thread's time in a function also holds its waits for the GIL
# while other threads run: with --forks N, the collection's functions read up to N times high.
WAITS = {"<method 'poll' of 'select.poll' objects>", "<method 'poll' of 'select.epoll' objects>",
         "<built-in method time.sleep>", "<method 'acquire' of '_thread.lock' objects>",
         "<method 'get' of '_queue.SimpleQueue' objects>", "<built-in method posix.waitpid>",
         "<built-in method select.select>"}  # fmt: skip


def print_profile(path: Path, top: int) -> None:
    """The functions with the most time of their own, waits apart, and the walguard functions
    with the most time including their callees."""
    stats = pstats.Stats(str(path))
    table = stats.stats  # type: ignore[attr-defined]  # pstats' documented-by-use table
    rows = [(tt, ct, nc, f"{Path(f).name}:{line}({fn})" if f != "~" else fn)
            for (f, line, fn), (_cc, nc, tt, ct, _callers) in table.items()]  # fmt: skip
    waiting = sum(r[0] for r in rows if r[3] in WAITS or r[3].endswith("(wait)"))
    busy = [r for r in rows if not (r[3] in WAITS or r[3].endswith("(wait)"))]
    print(f"\nprofile {path}: {sum(r[0] for r in busy):.1f} s in functions, {waiting:.1f} s "
          "waiting (summed over threads; the profile's own cost included)")  # fmt: skip
    print(f"top {top} by own time:  own s   cum s     calls  function")
    for tt, ct, nc, name in sorted(busy, reverse=True)[:top]:
        print(f"                     {tt:6.2f} {ct:7.2f} {nc:9d}  {name}")
    ours = [(ct, tt, nc, f"{f.split('/walguard/')[-1]}:{line}({fn})")
            for (f, line, fn), (_cc, nc, tt, ct, _c) in table.items()
            if "/walguard/" in f and "/site-packages/" not in f]  # fmt: skip
    print(f"top {top} walguard functions by time with callees:  cum s   own s     calls  function")
    for ct, tt, nc, name in sorted(ours, reverse=True)[:top]:
        print(f"{'':46}{ct:7.2f} {tt:7.2f} {nc:9d}  {name}")


def profile(inventory: Path, forks: int, work: Path, out: Path, top: int) -> None:
    audit_cpu(inventory, forks, work, PROFILER, {"WALGUARD_BENCH_PROFILE": str(out)})
    print("\none more audit under cProfile, every thread (not in the figures above):")
    print_profile(out, top)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inventory", type=Path, default=ROOT / "inventories" / "lab.yml")
    ap.add_argument("--names", type=int, default=300, help="inventory names over the lab hosts")
    ap.add_argument("--forks", type=int, default=10, help="the audit's --forks; the floor's too")
    ap.add_argument("--repeat", type=int, default=3, help="audit and floor pairs")
    ap.add_argument("--profile", type=Path, default=None, help="write a profile here (pstats)")
    ap.add_argument("--top", type=int, default=25, help="functions the profile prints")
    ap.add_argument("--lock", type=Path, default=None, help="flock this file around each pair")
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    args = ap.parse_args()
    if min(args.names, args.forks, args.repeat) < 1:
        ap.error("--names, --forks and --repeat take a whole number of at least 1")
    require_hosts(args.inventory)
    work = Path(tempfile.mkdtemp(prefix="walguard-cpu-"))
    try:
        measure(args, work)
    finally:
        if args.keep:
            print(f"run directories kept under {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def measure(args: argparse.Namespace, work: Path) -> None:
    inventory = work / f"inventory-{args.names}.yml"
    scaled_inventory(args.inventory, args.names, inventory)
    targets = read_inventory(str(inventory), VaultOptions((), ())).targets
    argvs = [floor_argv(t) for t in targets]
    pairs: list[tuple[Audit, float]] = []
    for i in range(args.repeat):
        with held(args.lock):
            floor = floor_cpu_s(argvs, args.forks)
            audit = audit_cpu(inventory, args.forks, work)
        pairs.append((audit, floor))
        print(f"... pair {i + 1}: audit {audit.cpu_s:.2f} CPU s (exit status "
              f"{audit.exit_status}), floor {floor:.2f} CPU s, {audit.cpu_s / floor:.2f}x",
              flush=True)  # fmt: skip
    audit, floor = sorted(pairs, key=lambda p: p[0].cpu_s / p[1])[len(pairs) // 2]
    if audit.unreachable:
        print(f"warning: unreachable in the audit: {', '.join(audit.unreachable)}")
    hosts = len(targets)
    print(f"\n{args.names} names over the lab's database hosts + {hosts - args.names} probe "
          f"host(s), {audit.hosts} hosts audited, --forks {args.forks}, median of {args.repeat} "
          "pair(s):")  # fmt: skip
    print(f"  walguard audit         {audit.cpu_s:7.2f} CPU s  {audit.cpu_s / hosts * 1000:6.1f} "
          f"ms/host  (python {audit.python_s:.2f} s, ssh {audit.cpu_s - audit.python_s:.2f} s)")
    print(f"  floor: ssh HOST true   {floor:7.2f} CPU s  {floor / hosts * 1000:6.1f} ms/host  "
          f"({hosts} connections)")  # fmt: skip
    print("  the audit by phase (CPU s: python, ssh):")
    for name, python, ssh in audit.phases:
        print(f"    {name:50} {python:7.2f} {ssh:7.2f}")
    # The one line a reader (or the test suite's smoke run) takes the figure from.
    print(f"controller CPU ratio (audit / ssh floor) at {args.names} names: "
          f"{audit.cpu_s / floor:.2f}x (target <= 1.25x)")  # fmt: skip
    if args.profile is not None:
        with held(args.lock):
            profile(inventory, args.forks, work, args.profile.resolve(), args.top)


if __name__ == "__main__":
    sys.exit(main())
