"""The seed's story, audited by walguard on the SELinux-enforcing guest: an unlabelled
/pg_archive makes archiving fail; walguard reports the label, persistence, AVC and archiver
controls failing with the cause linked, and every other control passing (the guest is a
complete host: zones, firewall, clock, name, certificate). A chcon-only fix passes the label
control and fails persistence, and a relabel does undo it. --remediate=apply adds the fcontext
rule and relabels; the next segment is archived and every control passes.

The tests run in file order on one boot (the guest module before this one ends with a reset):
pristine, chcon-only and relabelled, remediated. The pristine guest is audited once, for all of
its controls, and two tests judge that one audit.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.lab.break_cases import BASELINE_FAIL
from tests.lab.guest_support import Guest
from tests.lab.support import Audit, audit
from walguard.facts.network import ANSWERED_TLS, REFUSED
from walguard.lab import selinux_guest

pytestmark = pytest.mark.lab

HOST = selinux_guest.NAME
SEL = {f"WG-SEL-00{i}" for i in range(1, 7)}
ARCHIVER = {"WG-ACT-001", "WG-ACT-002", "WG-ACT-003", "WG-ACT-004", "WG-ACT-005"}
# What the unlabelled archive breaks on the pristine guest, and nothing else may fail there:
# the label and its persistence, the AVC denials, and the archiver with everything it should
# have put in the archive (no segment yet, and the seed segment's .ready older than the RPO);
# and no base backup (one cannot be taken while archiving fails: its WAL never reaches the archive)
# nor any archived commit (the data-loss window is the whole database).
SEED_BREAKS = {
    "WG-SEL-003",
    "WG-SEL-004",
    "WG-SEL-005",
    "WG-SEL-006",
    "WG-RST-001",
    "WG-RST-002",
} | {
    "WG-ACT-001",
    "WG-ACT-002",
    "WG-ACT-003",
    "WG-ACT-004",
    "WG-ACT-005",
    "WG-ACT-007",
    "WG-ACT-008",
}
# The validation matrix, which the nspawn hosts pass: the guest must pass it too.
PLATFORM = {f"WG-SYS-00{i}" for i in range(1, 7)} | {
    "WG-NET-001",
    "WG-NET-002",
    "WG-NET-003",
    "WG-NET-004",
    "WG-IDN-001",
    "WG-IDN-002",
    "WG-IDN-003",
}


def _audit(guest: Guest, tmp_path: Path, *args: str, select: str = "") -> Audit:
    # One -k only: pytest keeps the last. The guest's own inventory: the database hosts'
    # stream changes theirs meanwhile.
    selected = f"{HOST} and {select}" if select else HOST
    return audit(tmp_path, "-k", selected, *args, inventory=guest.inventory)


def _archiving_fails(g: Guest) -> None:
    g.switch_wal()
    g.wait_for("an archiver failure", lambda: int(g.archiver()["failed_count"]) > 0)
    g.wait_for("an AVC denial for postgresql_t", g.avc_denials)


@pytest.fixture(scope="module")
def pristine(guest: Guest, tmp_path_factory: pytest.TempPathFactory) -> Audit:
    """One audit of the pristine guest, every control, once archiving has failed."""
    _archiving_fails(guest)
    return _audit(guest, tmp_path_factory.mktemp("pristine"))


def test_pristine_guest_passes_what_a_complete_host_passes(pristine: Audit) -> None:
    assert pristine.by_result(HOST, "PASS") >= PLATFORM, pristine.stdout
    judged = {c["control"]: c["result"] for c in pristine.doc["hosts"][HOST]["controls"]}
    # Every control other than what the seed breaks passes: none is an ERROR, none is waved
    # through as NOT APPLICABLE (the guest's policy opts out of nothing). What the seed breaks
    # may pass for a while (the seed segment's .ready is younger than the RPO in a fresh image).
    others = {c: r for c, r in judged.items() if c not in SEED_BREAKS | BASELINE_FAIL}
    assert others == dict.fromkeys(others, "PASS"), pristine.stdout
    # Reached from zone-a over TLS verified against the lab CA, refused from zone-b.
    zones = pristine.doc["hosts"][HOST]["zones"]
    assert {z: (v["expect"], v["outcome"]) for z, v in zones.items()} == {
        "zone-a": ("reach", ANSWERED_TLS),
        "zone-b": ("refuse", REFUSED),
    }


def test_unlabelled_archive_is_reported_with_its_cause(pristine: Audit) -> None:
    failed = pristine.by_result(HOST, "FAIL")
    assert {"WG-SEL-003", "WG-SEL-004", "WG-SEL-005", "WG-SEL-006", "WG-ACT-002"} <= failed
    assert failed <= SEED_BREAKS | BASELINE_FAIL, pristine.stdout
    assert {"WG-SEL-001", "WG-SEL-002"} <= pristine.by_result(HOST, "PASS")
    assert pristine.message(HOST, "WG-ACT-002") == (
        "archiving fails because SELinux denies postgresql_t access to /pg_archive "
        "(labelled unlabeled_t); run the paired remediation"
    )
    assert "is labelled unlabeled_t" in pristine.message(HOST, "WG-SEL-004")
    assert "not persistent" in pristine.message(HOST, "WG-SEL-005")
    assert "AVC denials for postgresql_t" in pristine.message(HOST, "WG-SEL-006")
    assert pristine.exit_status == 1


def test_chcon_only_fix_is_not_persistent(guest: Guest, pristine: Audit, tmp_path: Path) -> None:
    guest.ssh("sudo -n chcon -R -t postgresql_db_t /pg_archive")
    result = _audit(guest, tmp_path, select="WG-SEL")
    assert "WG-SEL-004" in result.by_result(HOST, "PASS")
    assert {"WG-SEL-003", "WG-SEL-005"} <= result.by_result(HOST, "FAIL")
    assert "a relabel undoes a chcon-only fix" in result.message(HOST, "WG-SEL-005")
    # And so it does: a relabel gives /pg_archive the policy's default type again, which
    # PostgreSQL may not write (the remediation below starts from there).
    guest.ssh("sudo -n restorecon -R /pg_archive")
    context = guest.ssh("stat -c %C /pg_archive").stdout
    assert ":default_t:" in context, context


def test_remediation_fixes_it_and_archiving_resumes(guest: Guest, tmp_path: Path) -> None:
    # The default flow: every failed control of the host that has a paired script, in one batch
    # (a relabel and a reload), each under its own timeout, verified under the host's lock.
    fixed = _audit(
        guest, tmp_path, "--remediate=apply", "--change-ref", "CHG-SEED", "--fail-on", "low"
    )
    records = {c["control"]: c for c in fixed.doc["hosts"][HOST]["controls"] if c["remediation"]}
    assert {"WG-ARC-004", "WG-SEL-003", "WG-SEL-004", "WG-SEL-005"} <= set(records), fixed.stdout
    # An archive that holds no segment yet fails WG-ACT-008 with WG-ACT-005/007, and its script
    # refuses, since their absence is no owner or mode to fix.
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
    # Archiving works again: the base backup the bank's job takes can now complete.
    guest.ssh(
        "sudo -n install -d -o postgres -g postgres -m 0700 /pg_backup && "
        "sudo -n -u postgres pg_basebackup -D /pg_backup/after-fix -X none -c fast --no-sync"
    )
    after = _audit(guest, tmp_path, "--fail-on", "low")
    assert after.by_result(HOST, "PASS") >= (SEL | ARCHIVER | PLATFORM), after.stdout
    assert after.by_result(HOST, "FAIL") == set()  # the seed's command was remediated too
    assert after.exit_status == 0
