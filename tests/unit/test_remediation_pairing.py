"""Every remediable control has its script, every script belongs to a control, headers tell the
truth, and the scripts are shellcheck-clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from walguard.control_scripts import Script, scripts
from walguard.controls import load_all
from walguard.paths import REMEDIATION_DIR
from walguard.policy.model import Policy
from walguard.remediate.script_run import host_command, script_env


def test_every_remediable_control_has_a_script_and_every_script_a_control() -> None:
    controls = load_all()
    found = scripts()
    remediable = {cid for cid, c in controls.items() if c.remediation}
    assert remediable == set(found)
    for cid, script in found.items():
        assert script.control == cid, f"{script.path.name} says it is for {script.control}"
        assert controls[cid].remediation == script.path.name
        assert controls[cid].disruptive == script.disruptive, cid
        assert script.changes, f"{script.path.name} does not say what it changes"


@pytest.mark.parametrize("name", sorted(scripts()))
def test_scripts_are_shellcheck_clean(name: str) -> None:
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed (make deps installs it)")
    script = scripts()[name]
    done = subprocess.run(
        ["shellcheck", "-s", "bash", "-"],
        input=script.text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout


def test_hostile_policy_values_stay_data(tmp_path: Path) -> None:
    """Run the generated host command here (bash, no SSH) with a script that only echoes its
    inputs: a hostile value arrives as data and executes nothing."""
    pwned = tmp_path / "pwned"
    probe = tmp_path / "WG-X-001.sh"
    probe.write_text(
        'printf "dir=%s owner=%s ref=%s\\n" "$WG_ARCHIVE_DIR" "$WG_OWNER" "$WG_CHANGE_REF"\n'
    )
    hostile = Policy(
        archive_dir=f"/pg_archive; touch {pwned}", archive_owner=f"postgres$(touch {pwned})"
    )
    script = Script("WG-X-001", probe, "nothing", False)
    env = script_env(hostile, script.control, "check", f"CHG-1'; touch {pwned}; '")
    cmd = host_command([(script, env)], "@@T@@", 60)
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert f"dir=/pg_archive; touch {pwned} " in done.stdout
    assert f"owner=postgres$(touch {pwned})" in done.stdout
    assert not pwned.exists()


def test_scripts_have_no_values_pasted_in() -> None:
    for script in scripts().values():
        text = script.path.read_text()
        assert "/pg_archive" not in text, script.path.name
        assert "postgresql@" not in text, script.path.name
    assert isinstance(next(iter(scripts().values())), Script)
    assert (REMEDIATION_DIR / "lib" / "common.sh").exists()
