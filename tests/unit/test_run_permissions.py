"""A run directory is its owner's and the owner's group's: 0750, files 0640, whatever the shell's
umask, unless WALGUARD_REPORT_UMASK says otherwise. Real audits of a host nobody answers for (no
lab needed): the run directory is written all the same."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests import unanswered

REPO = Path(__file__).resolve().parents[2]


def _audit(tmp_path: Path, umask: int, **env: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    inv = tmp_path / "inventory.yml"
    inv.write_text(
        "all:\n  vars:\n    ansible_host: 127.0.0.1\n    walguard_ssh_retries: 0\n"
        f"    walguard_known_hosts_file: {known_hosts}\n"
        f"  hosts:\n    db1:\n      ansible_port: {unanswered.closed_port()}\n"
    )
    root = tmp_path / "reports"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
         "--report-root", str(root), "-k", "WG-ARC-001"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        env={**clean, **env}, preexec_fn=lambda: os.umask(umask),
    )  # fmt: skip
    return done, root


def _modes(root: Path) -> tuple[set[int], set[int]]:
    dirs, files = set(), set()
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.lstat().st_mode)
        (dirs if path.is_dir() else files).add(mode)
    return dirs, files


def test_a_run_is_not_readable_by_others_under_a_loose_umask(tmp_path: Path) -> None:
    done, root = _audit(tmp_path, 0o000)
    assert done.returncode == 6, done.stdout + done.stderr  # unreachable: ERROR
    dirs, files = _modes(root)
    assert dirs == {0o750} and files == {0o640}, (dirs, files)
    assert any(root.glob("*/evidence/db1/*")), "the evidence files were checked too"


def test_the_operator_can_say_otherwise(tmp_path: Path) -> None:
    done, root = _audit(tmp_path, 0o022, WALGUARD_REPORT_UMASK="077")
    assert done.returncode == 6, done.stdout + done.stderr
    dirs, files = _modes(root)
    assert dirs == {0o700} and files == {0o600}, (dirs, files)


def test_a_bad_umask_is_a_usage_error_before_anything_is_written(tmp_path: Path) -> None:
    done, root = _audit(tmp_path, 0o022, WALGUARD_REPORT_UMASK="rw-r")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "WALGUARD_REPORT_UMASK='rw-r': expected an octal umask" in done.stdout + done.stderr
    assert not root.exists()
