"""The seed's story, audited by walguard on the SELinux-enforcing guest: an unlabelled
/pg_archive makes archiving fail; walguard reports the label, persistence, AVC and archiver
controls failing with the cause linked; --remediate=apply adds the fcontext rule and relabels;
the next segment is archived and every SELinux and archiver control passes. A chcon-only fix
passes the label control and fails persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.support import Audit, audit
from tests.lab.test_selinux_guest import Guest
from walguard.lab import selinux_guest

pytestmark = pytest.mark.lab

HOST = selinux_guest.NAME
SEL = {f"WG-SEL-00{i}" for i in range(1, 7)}
ARCHIVER = {"WG-ACT-001", "WG-ACT-002", "WG-ACT-003", "WG-ACT-004", "WG-ACT-005"}


# The guest is here for its SELinux and archive controls; its platform and network matrix
# (reached through a loopback forward, not from a zone) is the nspawn hosts' to test.
SCOPE = "(WG-SEL or WG-ARC or WG-DIR or WG-ACT)"


def _audit(tmp_path: Path, *args: str, select: str = "") -> Audit:
    # One -k only: pytest keeps the last.
    return audit(tmp_path, "-k", f"{HOST} and {select or SCOPE}", *args)


def _archiving_fails(g: Guest) -> None:
    g.switch_wal()
    g.wait_for("an archiver failure", lambda: int(g.archiver()["failed_count"]) > 0)
    g.wait_for("an AVC denial for postgresql_t", g.avc_denials)


def test_unlabelled_archive_is_reported_with_its_cause(guest: Guest, tmp_path: Path) -> None:
    _archiving_fails(guest)
    result = _audit(tmp_path)
    failed = result.by_result(HOST, "FAIL")
    assert {"WG-SEL-003", "WG-SEL-004", "WG-SEL-005", "WG-SEL-006", "WG-ACT-002"} <= failed
    assert {"WG-SEL-001", "WG-SEL-002"} <= result.by_result(HOST, "PASS")
    assert result.by_result(HOST, "ERROR") == set(), result.stdout
    assert result.message(HOST, "WG-ACT-002") == (
        "archiving fails because SELinux denies postgresql_t access to /pg_archive "
        "(labelled unlabeled_t); run the paired remediation"
    )
    assert "is labelled unlabeled_t" in result.message(HOST, "WG-SEL-004")
    assert "not persistent" in result.message(HOST, "WG-SEL-005")
    assert "AVC denials for postgresql_t" in result.message(HOST, "WG-SEL-006")
    assert result.exit_status == 1


def test_remediation_fixes_it_and_archiving_resumes(guest: Guest, tmp_path: Path) -> None:
    # The default flow: every failed control of the host that has a paired script, in one batch
    # (a relabel and a reload), each under its own timeout, verified under the host's lock.
    fixed = _audit(tmp_path, "--remediate=apply", "--change-ref", "CHG-SEED", "--fail-on", "low")
    records = {c["control"]: c for c in fixed.doc["hosts"][HOST]["controls"] if c["remediation"]}
    assert {"WG-ARC-004", "WG-SEL-003", "WG-SEL-004", "WG-SEL-005"} <= set(records), fixed.stdout
    # The unlabelled archive holds no segment yet: WG-ACT-008 fails with WG-ACT-005/007, and its
    # script refuses, since their absence is no owner or mode to fix.
    refused = records.pop("WG-ACT-008", None)
    if refused is not None:
        assert refused["result"] == "REMEDIATION REFUSED", refused
        assert "holds no archived segment or history file" in refused["remediation"]["output"]
    for control, res in records.items():
        assert res["result"] == "REMEDIATED", (control, res)
        assert res["remediation"]["duration_s"] is not None
        assert res["remediation"]["timed_out"] is False
    outputs = " ".join(c["remediation"]["output"] for c in records.values())
    assert "semanage fcontext -a -t postgresql_db_t '/pg_archive(/.*)?'" in outputs
    assert "restorecon -Rv /pg_archive" in outputs

    segment = guest.switch_wal()
    guest.wait_for(f"{segment} archived", lambda: guest.archiver()["last_archived_wal"] >= segment)
    after = _audit(tmp_path, "--fail-on", "low")
    assert after.by_result(HOST, "PASS") >= (SEL | ARCHIVER), after.stdout
    assert after.by_result(HOST, "FAIL") == set()  # the seed's command was remediated too
    assert after.exit_status == 0


def test_chcon_only_fix_is_not_persistent(guest: Guest, tmp_path: Path) -> None:
    guest.lab.walguard("lab", "scenario", "reset", HOST)
    guest.ssh("sudo -n chcon -R -t postgresql_db_t /pg_archive")
    result = _audit(tmp_path, select="WG-SEL")
    assert "WG-SEL-004" in result.by_result(HOST, "PASS")
    assert {"WG-SEL-003", "WG-SEL-005"} <= result.by_result(HOST, "FAIL")
    assert "a relabel undoes a chcon-only fix" in result.message(HOST, "WG-SEL-005")
