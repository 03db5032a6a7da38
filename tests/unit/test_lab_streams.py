"""How the suite's lab tests are split between the two xdist workers, read from a real collection
of tests/lab (no lab needed: collecting starts nothing): the database hosts' stream on one
worker; the SELinux guest's and then the one on the hosts beside the lab on the other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from tests.lab.streams import EXCLUSIVE_MODULES

ROOT = Path(__file__).resolve().parents[2]

# Prints, after every collection hook has run (both conftests), each test's xdist group in the
# order the worker that gets the group will run it.
PLUGIN = """
import pytest

@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_collection_modifyitems(session, config, items):
    yield
    for item in items:
        group = item.get_closest_marker("xdist_group")
        print("GROUP", group.args[0] if group else "-", item.nodeid)
"""


def _collected(tmp_path: Path) -> list[tuple[str, str]]:
    (tmp_path / "streams_probe.py").write_text(PLUGIN)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider"),
            *("-p", "streams_probe", "tests/lab"),
        ],
        cwd=ROOT,
        env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("GROUP ")]
    return [(line.split(" ", 2)[1], line.split(" ", 2)[2]) for line in lines]


BESIDE = (
    "test_audit_controls.py::test_break_and_fix[",
    "test_scenarios.py::test_scenario_effect_and_reset[",
    "test_remediation.py::test_remediate_apply_fixes_and_verifies[",
)


def test_the_batches_run_beside_the_lab_after_the_guests_tests(tmp_path: Path) -> None:
    rows = _collected(tmp_path)
    groups = {nodeid: group for group, nodeid in rows}
    assert set(groups.values()) == {"lab", "guest"}
    break_and_fix = [n for n in groups if any(f"/{test}" in n for test in BESIDE)]
    assert len({n.split("[")[0] for n in break_and_fix}) == len(BESIDE)
    # The guest's own tests (a few in its modules need no guest, or change the lab: not those).
    guest = [n for n in groups if "/test_selinux_" in n and groups[n] == "guest"]
    assert break_and_fix and len(guest) > 5
    assert {groups[n] for n in break_and_fix} == {"guest"}
    # The guest's worker runs the guest's tests first, then stops the guest, then boots the
    # hosts beside the lab: no test beside the lab comes before the guest's last.
    order = [nodeid for _, nodeid in rows]
    assert max(order.index(n) for n in guest) < min(order.index(n) for n in break_and_fix)
    # What reads the lab's own hosts stays in the database hosts' stream.
    assert groups["tests/lab/test_audit_controls.py::test_pristine_lab_passes_the_gate"] == "lab"
    assert {g for n, g in groups.items() if "/test_lab_lifecycle.py::" in n} == {"lab"}
    # A standby of db1 needs db1 itself.
    standby = [n for n in groups if "::test_a_standby_of_db1_scenario_effect_and_reset[" in n]
    assert standby and {groups[n] for n in standby} == {"lab"}


def _reads_lab_status(node: ast.AST) -> bool:
    """Whether the code calls `….walguard("lab", "status", …)`."""
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and len(call.args) >= 2:
            words = [a.value for a in call.args[:2] if isinstance(a, ast.Constant)]
            if words == ["lab", "status"]:
                return True
    return False


def _marked_exclusive(func: ast.FunctionDef) -> bool:
    return any("lab_exclusive" in ast.unparse(d) for d in func.decorator_list)


def test_only_what_runs_alone_reads_the_whole_labs_status() -> None:
    """`lab status` fails while any host of the lab is stopped, and the other worker stops and
    starts its hosts (the guest, the hosts beside the lab) meanwhile: a test or fixture of the
    streams that run side by side must read its own hosts' records instead (a CI run errored in
    such a fixture's teardown)."""
    offenders = []
    for path in sorted((ROOT / "tests/lab").glob("*.py")):
        if path.name in EXCLUSIVE_MODULES:
            continue
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, ast.FunctionDef) or _marked_exclusive(func):
                continue
            if _reads_lab_status(func):
                offenders.append(f"{path.name}::{func.name}")
    assert offenders == []
