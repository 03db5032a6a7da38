"""walguard as a user installs it on a jump host: the wheel built from this tree, installed with
its pinned dependencies into a fresh virtualenv outside the checkout, audits the lab from another
directory and reaches the same verdicts as the checkout; with a directory of the user's own
controls and --limit too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.dist import build, copy_tree, fresh_venv
from tests.lab.break_cases import BASELINE_FAIL
from tests.lab.support import Lab
from walguard.controls import load_all
from walguard.lab import settings

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    venv: Path
    elsewhere: Path  # a directory outside the checkout, where the user runs walguard

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        # Nothing of the checkout's environment: no PYTHONPATH, the venv's bin first.
        skip = ("PYTHON", "VIRTUAL_ENV", "WALGUARD_REPORT_ROOT")
        env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        return subprocess.run(
            [str(self.venv / "bin" / "walguard"), *args],
            cwd=cwd or self.elsewhere, env=env, capture_output=True, text=True, timeout=600,
            check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    base = tmp_path_factory.mktemp("installed")
    wheel = build(copy_tree(base / "tree"), base / "dist", "wheel")
    python = fresh_venv(base / "venv")
    # The wheel's dependencies as the README installs them on a jump host: the run-time lock,
    # hash-checked (test_packaging checks that it pins exactly what the wheel needs).
    for argv in (
        ["install", "-q", "--require-hashes", "--no-deps", "-r", str(REPO / "requirements.txt")],
        ["install", "-q", "--no-deps", str(wheel)],
        ["check"],  # every dependency the wheel declares is there
    ):
        done = subprocess.run([str(python), "-m", "pip", *argv], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    yield Installed(base / "venv", elsewhere)


def _results(root: Path) -> dict[str, Any]:
    (path,) = root.glob("*/results.json")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _verdicts(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    return {
        (host, c["control"]): (c["result"], c["nodeid"])
        for host, h in doc["hosts"].items()
        for c in h["controls"]
    }


def test_the_installed_tool_is_the_wheels(installed: Installed) -> None:
    code = "import walguard, walguard.paths as p; print(walguard.__file__); print(p.LAYOUT)"
    done = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", code],
        cwd=installed.elsewhere, capture_output=True, text=True, check=True,
    )  # fmt: skip
    where = Path(done.stdout.splitlines()[0])
    assert installed.venv in where.parents, done.stdout
    assert REPO not in where.parents
    assert "checkout=False" in done.stdout
    # The nightly units travel too: `walguard examples NAME > FILE` on a jump host.
    unit = installed.run("examples", "systemd/walguard-audit@.service")
    assert unit.stdout == (REPO / "examples/systemd/walguard-audit@.service").read_text()


def test_installed_without_an_inventory_is_a_usage_error(installed: Installed) -> None:
    done = installed.run("audit")
    assert done.returncode == 4
    assert "no inventory: pass --inventory SOURCE" in done.stderr
    assert not (installed.elsewhere / "reports").exists()


def test_the_installed_tool_audits_the_lab_as_the_checkout_does(
    lab: Lab, installed: Installed, tmp_path: Path
) -> None:
    done = installed.run(
        "audit",
        "--inventory",
        str(settings.INVENTORY_PATH),
        "--report-root",
        str(tmp_path / "inst"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    mine = _results(tmp_path / "inst")
    # Run by the installed package: its controls, no checkout commit.
    assert mine["run"]["walguard"]["commit"] is None
    assert mine["run"]["pytest_args"][0] == str(
        next(installed.venv.glob("lib/python3*/site-packages/walguard/checks"))
    )
    # Every control on every database host, and the lab's known baseline.
    controls = {cid for cid, c in load_all().items() if not c.opt_in}
    hosts = [h.name for h in lab.hosts]
    assert set(_verdicts(mine)) == {(h, c) for h in hosts for c in controls}
    for host in hosts:
        failed = {c["control"] for c in mine["hosts"][host]["controls"] if c["result"] == "FAIL"}
        assert failed == BASELINE_FAIL, host
    # The checkout's own run of the same lab: the same verdicts, node ids, gate and status.
    checkout = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory",
         str(settings.INVENTORY_PATH), "--report-root", str(tmp_path / "checkout")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    theirs = _results(tmp_path / "checkout")
    assert _verdicts(mine) == _verdicts(theirs)
    assert (mine["gate"], mine["exit_status"]) == (theirs["gate"], theirs["exit_status"])
    assert checkout.returncode == done.returncode


BANK_CONTROL = textwrap.dedent(
    """\
    from walguard.controls import control, fail
    from walguard.facts.host import Postgres


    @control("WG-BNK-001", "archive_timeout is at most 300 s", severity="medium",
             rationale="The bank's own rule: a segment at least every five minutes.")
    def test_archive_timeout_at_most_300s(pg: Postgres) -> None:
        seconds = int(pg.setting("archive_timeout").setting)
        if seconds == 0 or seconds > 300:
            fail(f"archive_timeout is {seconds} s: the bank requires at most 300 s")
    """
)


def test_the_installed_tool_audits_users_controls_on_limited_hosts(
    lab: Lab, installed: Installed, tmp_path: Path
) -> None:
    checks = tmp_path / "bank" / "checks"
    checks.mkdir(parents=True)
    (checks / "test_bank.py").write_text(BANK_CONTROL)
    jump = tmp_path / "jump"
    jump.mkdir()
    # No --report-root: an installed walguard writes under the current directory's reports/.
    done = installed.run(
        "audit", "--inventory", str(settings.INVENTORY_PATH), "--checks", str(checks),
        "--limit", "lab,!db2", cwd=jump,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    doc = _results(jump / "reports")
    assert sorted(doc["hosts"]) == ["db1", "db3"]
    verdicts = _verdicts(doc)
    assert verdicts[("db1", "WG-BNK-001")] == ("PASS", "test_bank.py::WG-BNK-001[db1]")
    assert verdicts[("db3", "WG-BNK-001")][0] == "PASS"
    assert doc["controls"]["WG-BNK-001"]["title"] == "archive_timeout is at most 300 s"
    shipped = sum(1 for c in load_all().values() if not c.opt_in and c.id != "WG-BNK-001")
    assert (doc["selected"], doc["total"]) == (2 * (shipped + 1), 2 * (shipped + 1))
