"""`walguard audit` takes Ansible's own spellings (-i, -l, -f) as its users type them, and
`walguard --version` answers; bad input (forks, an impossible date, an unusable report root)
is one line and exit status 4, no traceback and no run written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from walguard import __version__

# Two hosts at a refused port: each connection fails at once, so an audit ends in a second.
INVENTORY = """\
all:
  hosts:
    db1: {ansible_host: 127.0.0.1, ansible_port: 1}
    db2: {ansible_host: 127.0.0.1, ansible_port: 1}
"""


def walguard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "walguard.cli", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yml"
    path.write_text(INVENTORY)
    return path


def test_i_l_and_f_are_inventory_limit_and_forks(inventory: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    done = walguard("audit", "-i", str(inventory), "-l", "db1", "-f", "1",
                    "--report-root", str(root), "-k", "ARC-001")  # fmt: skip
    assert done.returncode == 6, done.stdout + done.stderr  # db1 unreachable: ERROR
    (results,) = root.glob("*/results.json")
    doc = json.loads(results.read_text())
    assert list(doc["hosts"]) == ["db1"]
    assert doc["run"]["inventory"]["limit"] == "db1"
    assert doc["exit_status"] == 6
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("forks", "said"),
    [("0", "--forks 0: between 1 and 100"), ("abc", "not 'abc'")],
)
def test_bad_forks_are_one_line_and_no_run(
    inventory: Path, tmp_path: Path, forks: str, said: str
) -> None:
    root = tmp_path / "runs"
    done = walguard("audit", "-i", str(inventory), "-f", forks, "--report-root", str(root))
    assert done.returncode == 4
    assert said in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert not root.exists() or not any(root.iterdir())


@pytest.mark.parametrize("args", [("--version",), ("audit", "--version")])
def test_the_version_is_walguards(args: tuple[str, ...]) -> None:
    done = walguard(*args)
    assert (done.returncode, done.stdout.strip()) == (0, f"walguard {__version__}")


def test_an_impossible_date_in_an_inventory_is_one_line(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(
        INVENTORY.replace("ansible_port: 1}", "ansible_port: 1, when: 2027-31-03}")
    )
    done = walguard("audit", "-i", str(inventory), "--report-root", str(tmp_path / "runs"))
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"{inventory}:3: invalid YAML in inventory file: '2027-31-03' is not a date" in (
        done.stderr
    )
    assert "INTERNALERROR" not in done.stdout + done.stderr


@pytest.mark.parametrize("root", ["/proc/walguard-runs", "/etc/passwd/runs"])
def test_an_unusable_report_root_is_one_line(inventory: Path, root: str) -> None:
    done = walguard("audit", "-i", str(inventory), "--report-root", root)
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"--report-root {root}: cannot make a run directory there" in done.stderr
    assert "INTERNALERROR" not in done.stdout + done.stderr


def test_listing_the_controls_writes_and_prunes_no_run(inventory: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    walguard("audit", "-i", str(inventory), "--report-root", str(root), "-k", "ARC-001")
    (earlier,) = root.iterdir()
    for args in (("--co", "-q", "--keep-runs", "1"), ("--help",)):
        done = walguard("audit", "-i", str(inventory), "--report-root", str(root), *args)
        assert done.returncode == 0, done.stdout + done.stderr
        assert list(root.iterdir()) == [earlier], args
    listed = walguard("audit", "-i", str(inventory), "--report-root", str(root), "--co")
    assert "WG-ARC-001[db1]" in listed.stdout and "WG-ARC-001[db2]" in listed.stdout


def test_walguard_controls_lists_every_control() -> None:
    from walguard.controls import load_all

    shipped = load_all()
    listed = json.loads(walguard("controls", "--format", "json").stdout)
    assert listed[0]["id"] == "WG-ARC-001"  # the README's order
    assert {c["id"] for c in listed} == set(shipped)
    drill = next(c for c in listed if c["id"] == "WG-RST-003")
    assert (drill["severity"], drill["opt_in"]) == ("critical", "--restore-drill")
    assert set(drill) == {"id", "title", "severity", "refs", "remediation", "disruptive", "opt_in"}
    table = walguard("controls").stdout.splitlines()
    assert len(table) == len(shipped)
    assert any(line.startswith("WG-ARC-001  critical  archive_mode is on") for line in table)
    bad = walguard("controls", "--checks", "/nonexistent")
    assert bad.returncode == 4 and "no such directory" in bad.stderr
