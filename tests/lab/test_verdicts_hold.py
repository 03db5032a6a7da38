"""Verdicts that hold on the real lab: a complete gate (a crashed worker, -x, selection below the
gate), connections that survive a failed first attempt, odd bytes in remote output, verdicts
that do not depend on Python's assertions, ssh arguments that never reach a shell, and a
remediation lock no other user can take."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.lab.break_cases import BASELINE_FAIL
from tests.lab.support import Audit, Lab, audit, inventory_with
from walguard.controls import load_all
from walguard.lab import settings

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
# Per nspawn host, without --active-probe (opt-in).
ALL_CONTROLS = sum(1 for c in load_all().values() if not c.opt_in)


def _verdicts(a: Audit) -> dict[tuple[str, str], str]:
    return {
        (host, c["control"]): c["result"]
        for host, info in a.doc["hosts"].items()
        for c in info["controls"]
    }


def _audit_env(tmp_path: Path, env: dict[str, str], *args: str) -> Audit:
    old = dict(os.environ)
    os.environ.update(env)
    try:
        return audit(tmp_path, *args)
    finally:
        os.environ.clear()
        os.environ.update(old)


def test_a_killed_worker_leaves_its_host_error_and_the_gate_red(lab: Lab, tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO), "WG_TEST_CRASH_HOST": "db2"}
    # No replacement worker: what the dead one had not judged stays unjudged.
    result = _audit_env(
        tmp_path, env, "-n", "2", "--max-worker-restart=0", "-p", "tests.lab.crash_worker"
    )
    assert result.exit_status == 6, result.stdout
    assert result.doc["exit_status"] == 6
    db2 = {c["control"]: c for c in result.doc["hosts"]["db2"]["controls"]}
    assert len(db2) == ALL_CONTROLS, result.stdout  # every pair has a result: none is silent
    assert db2["WG-ARC-003"]["result"] == "ERROR"
    assert "crashed while running" in db2["WG-ARC-003"]["message"], db2["WG-ARC-003"]
    # Judged before the crash (the first file's controls, then ARC-001/002): real verdicts;
    # everything from the crash on: ERROR, never PASS.
    before = {f"WG-DIR-00{i}" for i in range(1, 6)} | {"WG-ARC-001", "WG-ARC-002"}
    judged = {cid for cid, c in db2.items() if c["result"] != "ERROR"}
    assert judged <= before, judged
    assert result.doc["hosts"]["db2"]["worker_crash"]
    assert result.by_result("db1", "ERROR") == set() or result.by_result("db3", "ERROR") == set()
    assert f"{3 * ALL_CONTROLS} of {3 * ALL_CONTROLS} controls selected" in result.stdout


def test_a_replaced_worker_judges_what_the_dead_one_left(lab: Lab, tmp_path: Path) -> None:
    once = tmp_path / "crashed-once"
    env = {"PYTHONPATH": str(REPO), "WG_TEST_CRASH_HOST": "db2", "WG_TEST_CRASH_ONCE": str(once)}
    result = _audit_env(tmp_path, env, "-n", "2", "-p", "tests.lab.crash_worker")
    assert once.exists()  # the worker did die
    # xdist starts a new worker and hands it the host again: every verdict is a real one.
    for host in ("db1", "db2", "db3"):
        assert result.by_result(host, "FAIL") == BASELINE_FAIL, result.stdout
        assert result.by_result(host, "ERROR") == set(), result.stdout
    assert result.doc["hosts"]["db2"]["worker_crash"]
    assert result.exit_status == 0


def test_stopping_early_and_selecting_below_the_gate_are_never_green(
    lab: Lab, tmp_path: Path
) -> None:
    stopped = audit(tmp_path, "-x")
    assert stopped.exit_status == 6, stopped.stdout
    assert stopped.doc["selected"] == stopped.doc["total"] == 3 * ALL_CONTROLS
    errors = [
        c
        for info in stopped.doc["hosts"].values()
        for c in info["controls"]
        if c["result"] == "ERROR"
    ]
    assert errors and all("stopped early" in c["message"] for c in errors)
    assert len(stopped.doc["missing"]) == len(errors)

    low_only = audit(tmp_path, "-m", "severity_low")
    assert low_only.exit_status == 5, low_only.stdout
    assert low_only.doc["selected"] == 3 and low_only.doc["total"] == 3 * ALL_CONTROLS
    assert f"3 of {3 * ALL_CONTROLS} controls selected" in low_only.stdout
    assert audit(tmp_path, "-m", "severity_low", "--fail-on", "low").exit_status == 1


FAKE_SSH = """#!/bin/sh
# Fails the first master connection to each destination (or every one, with WG_FAKE_ALWAYS),
# as a refused connection would, saying so where ssh would (the -E log file, else stderr);
# everything else is the real ssh.
case " $* " in
  *" ControlMaster=yes "*)
    log=; dest=; prev=
    for arg; do
      if [ "$prev" = "--" ] && [ -z "$dest" ]; then dest=$arg; fi
      if [ "$prev" = "-E" ]; then log=$arg; fi
      prev=$arg
    done
    mark="$WG_FAKE_STATE/$(printf %s "$dest" | tr -c 'A-Za-z0-9' _)"
    if [ -n "${WG_FAKE_ALWAYS:-}" ] || [ ! -e "$mark" ]; then
      touch "$mark"
      msg="ssh: connect to host $dest port 22: Connection refused"
      if [ -n "$log" ]; then echo "$msg" >>"$log"; else echo "$msg" >&2; fi
      exit 255
    fi;;
esac
exec /usr/bin/ssh "$@"
"""


def _fake_ssh(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ssh"
    fake.write_text(FAKE_SSH)
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    state = tmp_path / "state"
    state.mkdir()
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "WG_FAKE_STATE": str(state)}


def test_a_failed_first_connection_is_retried(lab: Lab, tmp_path: Path) -> None:
    result = _audit_env(tmp_path, _fake_ssh(tmp_path), "-k", "db1")
    info = result.doc["hosts"]["db1"]
    assert info["reachable"] is True, result.stdout
    assert [a["ok"] for a in info["ssh_attempts"]] == [False, True]
    assert "Connection refused" in info["ssh_attempts"][0]["reason"]
    assert result.by_result("db1", "FAIL") == BASELINE_FAIL
    assert result.by_result("db1", "ERROR") == set()
    assert result.exit_status == 0


def test_a_connection_that_always_fails_is_error_after_its_retries(
    lab: Lab, tmp_path: Path
) -> None:
    env = {**_fake_ssh(tmp_path), "WG_FAKE_ALWAYS": "1"}
    result = _audit_env(tmp_path, env, "-k", "db1")
    info = result.doc["hosts"]["db1"]
    assert info["reachable"] is False
    assert [a["ok"] for a in info["ssh_attempts"]] == [False, False, False]  # 1 + 2 retries
    assert result.by_result("db1", "ERROR") == {c["control"] for c in info["controls"]}
    assert "Connection refused (after 3 attempts)" in result.message("db1", "WG-ARC-001")
    assert result.exit_status == 6


def test_a_non_utf8_file_name_is_collected_once_with_correct_verdicts(
    lab: Lab, tmp_path: Path
) -> None:
    db1 = lab.hosts[0]
    lab.ssh(db1, "sudo -n -u postgres touch \"/pg_archive/$(printf 'odd\\377name')\"")
    try:
        result = audit(tmp_path)
        assert result.doc["hosts"]["db1"]["collections"] == 1
        assert result.by_result("db1", "FAIL") == BASELINE_FAIL, result.stdout
        assert result.by_result("db1", "ERROR") == set()
        assert result.exit_status == 0
        evidence = next((tmp_path).glob("reports-*/*/evidence/db1/collector.txt"))
        assert b"odd\xffname" in evidence.read_bytes()  # the raw bytes, kept
    finally:
        lab.ssh(db1, "sudo -n sh -c 'rm -f /pg_archive/odd*name'")


def test_verdicts_do_not_depend_on_python_assertions(lab: Lab, tmp_path: Path) -> None:
    db1 = lab.hosts[0]
    lab.walguard("lab", "scenario", "apply", db1.name, "archive-dir-mode-0777")
    try:
        plain = audit(tmp_path, "-k", "db1")
        optimised = _audit_env(tmp_path, {"PYTHONOPTIMIZE": "1"}, "-k", "db1", "--assert=plain")
        assert "WG-DIR-004" in plain.by_result("db1", "FAIL")
        assert _verdicts(optimised) == _verdicts(plain)
        assert optimised.exit_status == plain.exit_status == 1
    finally:
        lab.walguard("lab", "scenario", "reset", db1.name)


def test_shell_metacharacters_in_ssh_args_run_nothing(lab: Lab, tmp_path: Path) -> None:
    marker = tmp_path / "x"
    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["children"]["lab"]["hosts"]["db1"]["ansible_ssh_common_args"] = (
        f"-o ProxyCommand=$(touch {marker})"
    )
    inv.write_text(yaml.safe_dump(doc))
    result = audit(tmp_path, inventory=inv)
    assert result.exit_status == 4
    assert f"{inv}:" in result.stderr and "shell metacharacters" in result.stderr
    assert not marker.exists()


def _result(a: Audit, host: str, control: str) -> dict[str, Any]:
    return next(c for c in a.doc["hosts"][host]["controls"] if c["control"] == control)


def test_the_remediation_lock_is_root_only(lab: Lab, tmp_path: Path) -> None:
    db1 = lab.hosts[0]
    lab.walguard("lab", "scenario", "apply", db1.name, "archive-dir-mode-0777")
    try:
        fixed = audit(tmp_path, "-k", "WG-DIR-004 and db1", "--remediate=apply")
        res = _result(fixed, "db1", "WG-DIR-004")
        assert res["result"] == "REMEDIATED", fixed.stdout
        assert res["remediation"]["duration_s"] is not None
        assert lab.ssh(db1, "stat -c %U:%a /run/walguard").stdout.strip() == "root:700"
        # Another user can neither create the lock nor the directory it lives in.
        nobody = "sudo -n -u nobody sh -c 'touch /run/walguard/remediation.lock'"
        assert lab.ssh(db1, nobody, check=False).returncode != 0
        lab.ssh(db1, "sudo -n rm -rf /run/walguard")
        nobody_dir = "sudo -n -u nobody mkdir /run/walguard"
        assert lab.ssh(db1, nobody_dir, check=False).returncode != 0
        # A directory someone else could write is refused, and nothing is changed.
        lab.ssh(db1, "sudo -n install -d -m 0777 /run/walguard")
        lab.walguard("lab", "scenario", "apply", db1.name, "archive-dir-mode-0777")
        refused = audit(tmp_path, "-k", "WG-DIR-004 and db1", "--remediate=apply")
        res = _result(refused, "db1", "WG-DIR-004")
        assert res["result"] == "REMEDIATION FAILED"
        assert "not root's own 0700 directory" in res["remediation"]["output"]
        assert lab.ssh(db1, "sudo -n stat -c %a /pg_archive").stdout.strip() == "777"
    finally:
        lab.ssh(db1, "sudo -n rm -rf /run/walguard")
        lab.walguard("lab", "scenario", "reset", db1.name)


def test_known_hosts_and_strictness_survive_the_new_transport(lab: Lab, tmp_path: Path) -> None:
    """A run with an empty known_hosts file: every host ERROR, nothing accepted."""
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    inv = inventory_with(tmp_path, {})
    doc = yaml.safe_load(inv.read_text())
    doc["all"]["vars"]["walguard_known_hosts_file"] = str(empty)
    inv.write_text(yaml.safe_dump(doc))
    result = audit(tmp_path, "-k", "db1", inventory=inv)
    assert result.doc["hosts"]["db1"]["reachable"] is False
    assert "host key is known for" in result.message("db1", "WG-ARC-001")
    assert len(result.doc["hosts"]["db1"]["ssh_attempts"]) == 1  # permanent: not retried
    assert empty.read_text() == ""
    assert settings.INVENTORY_PATH.exists()
