"""A synthetic audit run, put through the real writers: for the report benchmark (1,000 hosts x
40 controls) and for tests that need known failures whatever the lab hosts say today.

The controls are the real ones, topped up with made-up ones (WG-SYN-*) to the count asked for;
results are chosen deterministically from the host and control so that every run of the same
size is the same run.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

from walguard.audit.run import AuditRun, item_name
from walguard.audit.runinfo import RunInfo, new_run_name
from walguard.controls import Control, load_all
from walguard.inventory.load import Target
from walguard.results import ERROR, FAIL, NOT_APPLICABLE, PASS, REMEDIATED, Result

TOKEN = "@@WG-5ynth371c5ynth3@@"
FAIL_MESSAGE = (
    "archive directory /pg_archive is mode 0777 (group or other may write); allowed: 0700, 0750"
)
UNREACHABLE = "ssh: connect to host {addr} port 22: Connection timed out (after 3 attempts)"


def controls(count: int) -> list[Control]:
    real = list(load_all().values())[:count]
    severities = ("critical", "high", "medium", "low")
    made_up = [
        Control(
            f"WG-SYN-{i:03d}",
            f"synthetic control {i}",
            severities[i % 4],
            "A made-up control for the report benchmark.",
            ("BSI APP.4.3.A1",),
            None,
            False,
        )
        for i in range(1, count - len(real) + 1)
    ]
    return real + made_up


def _pick(host: str, control: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{host}/{control}".encode()).digest()[:2], "big")


def result_for(host: str, index: int, meta: Control) -> Result:
    """About 5% FAIL, 1% REMEDIATED, NOT APPLICABLE for SELinux, every 100th host unreachable."""
    nodeid = f"checks/test_synthetic.py::{item_name(meta.id, host)}"
    if index % 100 == 99:
        message = UNREACHABLE.format(addr=f"10.0.{index // 250}.{index % 250}")
        return Result(host, meta.id, meta.title, meta.severity, ERROR, message, nodeid)
    roll = _pick(host, meta.id) % 1000
    if meta.id.startswith("WG-SEL-"):
        return Result(host, meta.id, meta.title, meta.severity, NOT_APPLICABLE,
                      "SELinux is not required on this host (walguard_selinux_required: false)",
                      nodeid)  # fmt: skip
    if roll < 50:
        return Result(host, meta.id, meta.title, meta.severity, FAIL, FAIL_MESSAGE, nodeid)
    if roll < 60:
        rem = {"script": f"{meta.id}.sh", "mode": "apply", "status": "exit 0",
               "output": "chmod 0750 /pg_archive (was 0777)", "change_ref": "CHG-1",
               "verified_result": PASS, "verified_message": "", "duration_s": 0.4,
               "exit_status": 0, "timed_out": False}  # fmt: skip
        return Result(host, meta.id, meta.title, meta.severity, REMEDIATED, FAIL_MESSAGE,
                      nodeid, rem)  # fmt: skip
    return Result(host, meta.id, meta.title, meta.severity, PASS, "", nodeid)


def collector_text(host: str) -> str:
    """A collector output shaped like the real one (framed sections, ~10 KB)."""
    sections = {
        "hostname": host,
        "archive_lstat": "directory",
        "archive_realpath": "/pg_archive",
        "archive_stat": "postgres|postgres|777|directory|101|104",
        "archive_mount": 'TARGET="/pg_archive" SOURCE="/dev/sdb1" FSTYPE="ext4" '
        'OPTIONS="rw,relatime" MAJ:MIN="8:17" FSROOT="/"',
        "archive_df": "Filesystem 1-blocks Used Available Capacity Mounted on\n"
        "/dev/sdb1 105089261568 2147483648 97575456768 3% /pg_archive",
        "archive_files": "\n".join(
            f"0000000100000000000000{i:02X}|f|16777216|1795656{i:03d}.0" for i in range(120)
        ),
    }
    out = []
    for name, body in sections.items():
        out += [f"{TOKEN} BEGIN {name}", body, "", f"{TOKEN} END {name} 0"]
    return "\n".join(out) + "\n"


def make_run(
    run_dir: Path, hosts: int, count: int, *, evidence: bool = True
) -> tuple[AuditRun, list[Result], RunInfo]:
    """The run's state as the plugin would hold it at the end, with evidence files written."""
    metas = controls(count)
    targets = [
        Target(f"db{i:04d}", f"10.0.{i // 250}.{i % 250}", 22, "walguard", None, True, ("db",), {})
        for i in range(hosts)
    ]
    run = AuditRun(targets, run_dir, "medium")
    run.expect({(t.name, m.id): m for t in targets for m in metas}, hosts * count)
    results = []
    for index, target in enumerate(targets):
        unreachable = index % 100 == 99
        host_info = {"address": target.address, "reachable": not unreachable, "round_trips": 1,
                "error": UNREACHABLE.format(addr=target.address) if unreachable else None,
                "ssh_attempts": [], "collected_by": "main", "collections": 1}  # fmt: skip
        run.record_host(target.name, host_info)
        for meta in metas:
            res = result_for(target.name, index, meta)
            run.record(res)
            results.append(res)
        if evidence:
            directory = run_dir / "evidence" / target.name
            directory.mkdir(parents=True, exist_ok=True)
            if unreachable:
                (directory / "error.txt").write_text(str(host_info["error"]) + "\n")
            else:
                (directory / "collector.txt").write_text(collector_text(target.name))
    info = RunInfo.start(
        run_dir.name, targets=targets, inventory_source="synthetic", listing=None,
        pytest_args=["checks"], fail_on="medium",
    )  # fmt: skip
    return run, results, info


def new_run_dir(root: Path) -> Path:
    path = root / new_run_name(root)
    path.mkdir(parents=True)
    return path


def with_result(results: list[Result], host: str, control: str, **changes: Any) -> list[Result]:
    """The same results with one changed (tests put a known message in)."""
    return [replace(r, **changes) if (r.host, r.control) == (host, control) else r
            for r in results]  # fmt: skip
