"""Every benchmark in bench/ run end to end at a tiny size on the real lab, so that a benchmark
broken by a change (a renamed import, a probe host taken for a database host) fails here rather
than on the day someone runs `make bench`. Each must finish and print its ratio line; the ratio
must be a positive number. No figure is judged against a threshold: at this size and on a shared
machine timings mean nothing, and the benchmarks themselves assert nothing about speed.

They run without `--lock`: the lab is the session's (whoever runs the lab tests holds the lab).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.support import Lab
from walguard.lab import settings

pytestmark = pytest.mark.lab

BENCH = Path(__file__).resolve().parents[2] / "bench"
INVENTORY = str(settings.INVENTORY_PATH)


def bench(script: str, *args: str) -> str:
    """Run bench/SCRIPT with this interpreter; its output, once it has exited 0."""
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        cwd=BENCH.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    command = " ".join([script, *args])
    assert done.returncode == 0, f"{command}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def ratios(pattern: str, output: str) -> list[float]:
    """Every ratio the pattern's groups capture, each a positive number; at least one."""
    found = [float(g) for m in re.finditer(pattern, output, re.MULTILINE) for g in m.groups()]
    assert found, f"no line matching {pattern!r} in:\n{output}"
    assert all(r > 0 for r in found), output
    return found


def test_compare_measures_the_database_hosts_only(lab: Lab) -> None:
    out = bench("compare.py", "--inventory", INVENTORY, "--hosts", "1", "--repeat", "1",
                "--delay-ms", "20")  # fmt: skip
    assert out.startswith("hosts: 1; walguard round trips per host: db1=1;"), out
    # Both latencies, both testinfra backends, each as a ratio of walguard's time.
    found = ratios(r"^  testinfra (?:ssh|paramiko) backend +\d+ ms +([\d.]+)x walguard$", out)
    assert len(found) == 4, out


def test_report_at_a_tiny_size() -> None:
    out = bench("report.py", "--hosts", "3", "--controls", "5", "--repeat", "1", "--no-render")
    ratios(r"^walguard / stock pytest-html: report\.html size ([\d.]+)x$", out)
    assert "walguard within the targets" in out, out


def test_scale_at_a_tiny_size(lab: Lab) -> None:
    out = bench("scale.py", "--inventory", INVENTORY, "--sizes", "3", "--old-sizes", "3",
                "--old-n", "2", "--kex-sizes", "3", "--slow-hosts", "0", "--no-render")  # fmt: skip
    ratios(r"^3 hosts: old way / fan-out wall ([\d.]+)x, controller CPU ([\d.]+)x; "
           r"verdicts identical: (?:yes|NO)$", out)  # fmt: skip
    ratios(r"^3 hosts: KexAlgorithms=curve25519-sha256 / the default key exchange, "
           r"controller CPU ([\d.]+)x$", out)  # fmt: skip


def test_controller_cpu_at_a_tiny_size(lab: Lab) -> None:
    out = bench("controller_cpu.py", "--inventory", INVENTORY, "--names", "3", "--repeat", "1")
    ratios(r"^controller CPU ratio \(audit / ssh floor\) at 3 names: ([\d.]+)x", out)
    # Every name and both probe hosts are in the floor; the audit judged every name.
    assert "3 names over the lab's database hosts + 2 probe host(s), 3 hosts audited" in out, out
    assert "(5 connections)" in out, out


def test_drill_at_a_tiny_size(lab: Lab) -> None:
    """The restore drill against its floor (a plain copy of the backup and pg_waldump over the
    WAL the drill replayed) on one lab host: the figure #22's benchmark reports."""
    out = bench("drill.py", "--host", "db2", "--repeat", "1")
    ratios(r"^db2: drill restore [\d.]+ s, floor \(copy \+ pg_waldump\) [\d.]+ s, "
           r"ratio ([\d.]+)x \(median of 1 pairs", out)  # fmt: skip
