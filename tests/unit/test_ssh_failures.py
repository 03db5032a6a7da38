"""A connection that fails is reported in ssh's own words (real ssh, no lab): behind a ProxyJump
bastion whose name does not resolve, the message is the bastion's "Could not resolve hostname",
said once, not the outer client's "Connection closed by UNKNOWN port 65535"; every line ssh wrote
is in the host's evidence; the result is a junit <error>, not a <failure>."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests import unanswered

REPO = Path(__file__).resolve().parents[2]
RESOLVE = "Could not resolve hostname nosuchbastion.invalid"


def test_a_bastion_that_does_not_resolve_is_named_once(tmp_path: Path) -> None:
    inv = unanswered.inventory(tmp_path, ["jumped"])
    inv.write_text(
        inv.read_text().replace(
            "    walguard_ssh_retries: 0\n",
            "    walguard_ssh_retries: 0\n"
            '    ansible_ssh_common_args: "-o ProxyJump=nosuchbastion.invalid"\n',
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "-i", str(inv),
         "--report-root", str(tmp_path / "r"), "-k", "WG-ARC-001 or WG-SYS-001"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 6, out
    assert "Connection closed by UNKNOWN" not in out
    assert "ssh: ssh:" not in out and "jumped: jumped:" not in out
    assert f"jumped: UNREACHABLE (ssh: {RESOLVE}: " in out, out
    assert f"ERROR WG-ARC-001, WG-SYS-001 on jumped: ssh: {RESOLVE}: " in out, out
    (run_dir,) = (tmp_path / "r").iterdir()
    host = json.loads((run_dir / "results.json").read_text())["hosts"]["jumped"]
    assert host["error"].startswith(f"ssh: {RESOLVE}: ")
    assert host["round_trips"] == 0
    (attempt,) = host["ssh_attempts"]
    assert attempt["ok"] is False
    assert attempt["ssh_said"][0].startswith(f"ssh: {RESOLVE}: ")
    assert "Connection closed by UNKNOWN port 65535" in attempt["ssh_said"]
    evidence = (run_dir / "evidence" / "jumped" / "error.txt").read_text()
    assert evidence.startswith(f"ssh: {RESOLVE}: ")
    assert "  Connection closed by UNKNOWN port 65535\n" in evidence
    junit = (run_dir / "junit.xml").read_text()
    assert 'errors="2"' in junit and 'failures="0"' in junit
