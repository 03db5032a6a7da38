"""Control items are run by a lean runtest protocol (walguard.audit.protocol): what pytest and
its plugins see of a run must be what pytest's full protocol shows. Two real audits of hosts on
this machine that nobody answers for (no lab needed), one lean and one forced through the full
protocol by --setup-show: the same junit report, the same results, the same exit status; and
-x still stops a lean run after its first failure."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import unanswered

REPO = Path(__file__).resolve().parents[2]


def _audit(tmp: Path, name: str, *args: str, port: int | None = None) -> tuple[int, Path, str]:
    inv = unanswered.inventory(tmp, ["db1", "db2"], port)
    root = tmp / name
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
         "--report-root", str(root), "-k", "WG-ARC or WG-DIR", *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    (run_dir,) = root.iterdir()
    return done.returncode, run_dir, done.stdout + done.stderr


def _junit(run_dir: Path) -> str:
    text = (run_dir / "junit.xml").read_text()
    return re.sub(r' (time|timestamp|hostname)="[^"]*"', "", text)


def _results(run_dir: Path) -> list[Any]:
    doc = json.loads((run_dir / "results.json").read_text())
    return sorted(
        (h, c["control"], c["result"], c["message"], c["nodeid"])
        for h, info in doc["hosts"].items()
        for c in info["controls"]
    )


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, Path, str]]:
    tmp = tmp_path_factory.mktemp("protocol")
    port = unanswered.closed_port()  # the same in both: messages name it
    return {
        "lean": _audit(tmp, "lean", port=port),
        "full": _audit(tmp, "full", "--setup-show", port=port),
    }


def test_lean_and_full_protocol_report_the_same(
    both: dict[str, tuple[int, Path, str]],
) -> None:
    (lean_rc, lean_dir, lean_out), (full_rc, full_dir, full_out) = both["lean"], both["full"]
    assert lean_rc == full_rc == 6, lean_out + full_out  # unreachable: ERROR
    # The full protocol really ran: --setup-show names each item as pytest sets it up.
    shown = "checks/test_archive_settings.py::WG-ARC-001[db1] E"
    assert shown in full_out and shown not in lean_out
    assert _junit(lean_dir) == _junit(full_dir)
    # ERROR (could not look) is junit's <error>, never a <failure> of the control.
    junit = _junit(lean_dir)
    assert 'tests="20"' in junit and 'errors="20"' in junit and 'failures="0"' in junit
    assert "<error" in junit and "<failure" not in junit
    assert _results(lean_dir) == _results(full_dir)
    assert {r[2] for r in _results(lean_dir)} == {"ERROR"}


def test_maxfail_stops_a_lean_run(tmp_path: Path) -> None:
    rc, run_dir, out = _audit(tmp_path, "x", "-x")
    assert rc == 6, out
    assert "stopping after 1 failures" in out and "1 error" in out
    results = _results(run_dir)
    assert sum("the run stopped early" in r[3] for r in results) == len(results) - 1


PHASE_PLUGIN = """
import os

def pytest_runtest_call(item):
    with open(os.environ["WG_TEST_CALLS"], "a") as out:
        out.write(item.nodeid + "\\n")
"""


def test_a_plugin_that_hooks_a_phase_gets_the_full_protocol(tmp_path: Path) -> None:
    (tmp_path / "phase_plugin.py").write_text(PHASE_PLUGIN)
    calls = tmp_path / "calls.txt"
    inv = unanswered.inventory(tmp_path, ["db1"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    env["WG_TEST_CALLS"] = str(calls)
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
         "--report-root", str(tmp_path / "r"), "-k", "WG-ARC", "-p", "phase_plugin"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 6, done.stdout + done.stderr
    called = calls.read_text().split()
    assert len(called) == 5 and all("WG-ARC-00" in c and "[db1]" in c for c in called)


LOCATION_PLUGIN = """
import os
import pytest

def pytest_collection_finish(session):
    with open(os.environ["WG_TEST_LOCATIONS"], "w") as out:
        for item in session.items:
            ours, pytests = item.location, pytest.Item.location.func(item)
            out.write(f"{ours == pytests} {ours} {pytests}\\n")
"""


def test_a_control_items_location_is_pytests(tmp_path: Path) -> None:
    (tmp_path / "location_plugin.py").write_text(LOCATION_PLUGIN)
    seen = tmp_path / "locations.txt"
    inv = unanswered.inventory(tmp_path, ["db1", "db2"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    env["WG_TEST_LOCATIONS"] = str(seen)
    subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
         "--report-root", str(tmp_path / "r"), "-p", "location_plugin", "--co"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    lines = seen.read_text().splitlines()
    assert len(lines) > 40
    assert all(line.startswith("True ('checks/test_") for line in lines), lines[:3]
