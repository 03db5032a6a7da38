"""The restore drill (--restore-drill): the newest base backup restored into a scratch cluster on
the host and the archive replayed to a target time between two canary rows; and the time that
took against the recovery time objective."""

from __future__ import annotations

from walguard.controls import control, fail
from walguard.errors import FactUnavailable
from walguard.facts.drill_result import DrillResult
from walguard.policy.model import Policy

REFS = ("DORA Art. 12(2)", "DORA Art. 12(3)", "DORA Art. 11(6)", "ISO/IEC 27001 A.8.13")


@control(
    "WG-RST-003",
    "a restore drill recovers the newest base backup to a point in time (--restore-drill)",
    severity="critical",
    refs=REFS,
    opt_in="--restore-drill",
    reads=("drill_prepare", "drill_canary", "drill_restore", "drill_log", "drill_cleanup"),
    scenarios=(),  # tests/lab/test_restore_drill_lab.py breaks it
    rationale="Only a restore shows that a database can be recovered: a backup that verifies "
    "and an archive without gaps can still fail to replay. DORA asks for restoration tests on "
    "segregated systems, recorded.",
    detail="`--restore-drill` only: canary row A is written, target time T taken, canary row B "
    "written and the WAL switched and archived; the newest base backup is restored into a "
    "scratch cluster under `walguard_restore_scratch_dir`, on the host or on its restore host "
    "(`walguard_restore_host`) (no TCP listener, private socket, "
    "archive_mode off, resource limits) and the archive replayed with recovery_target_time T. "
    "PostgreSQL's log shows the target reached and no FATAL, row A is there and row B is not, "
    "and the restored cluster's system identifier is the primary's; the scratch is removed",
)
def test_restore_drill(drill: DrillResult) -> str:
    stopping = drill.stopping_line
    fatal = drill.fatal_lines
    if not drill.restored:
        why = "; ".join(fatal[:2]) or next(iter(drill.problems), "") or "it never answered"
        fail(
            f"the restore of {drill.backup} to {drill.target} UTC failed: {why}"
            + _cleanup_note(drill)
        )
    if fatal:
        fail(f"the scratch cluster logged {fatal[0]!r}{_cleanup_note(drill)}")
    if stopping is None:
        fail(
            f"PostgreSQL's log does not show the target {drill.target} UTC reached (no "
            f"'recovery stopping before commit'): recovery ended elsewhere{_cleanup_note(drill)}"
        )
    if drill.restored_sysid != drill.primary_sysid:
        fail(
            f"the restored cluster's system identifier {drill.restored_sysid} is not the "
            f"primary's {drill.primary_sysid}: the backup is another cluster's"
        )
    if drill.a_rows != 1 or drill.b_rows != 0:
        fail(
            f"canary A ({drill.canary_a.written} UTC) is {'there' if drill.a_rows else 'missing'}"
            f" and canary B ({drill.canary_b.written} UTC) is "
            f"{'there' if drill.b_rows else 'absent'} after recovery to {drill.target} UTC: the "
            "restore did not stop at the target"
        )
    if not drill.cleaned:
        raise FactUnavailable(
            f"the drill restored, but its scratch was not removed: {drill.cleanup}"
        )
    stale = f"; removed a stale scratch {', '.join(drill.stale)}" if drill.stale else ""
    where = f" on the restore host {drill.restored_on}" if drill.restored_on else ""
    return (
        f"{drill.backup} (start WAL {drill.start_wal}) restored{where} and replayed to "
        f"{drill.target} UTC: PostgreSQL logged '{stopping}'; canary A present, B absent; "
        f"system identifier {drill.restored_sysid} as the primary's; scratch removed{stale}"
    )


def _cleanup_note(drill: DrillResult) -> str:
    return "" if drill.cleaned else f" (and the scratch was not removed: {drill.cleanup})"


@control(
    "WG-RST-004",
    "the drill's restore time is within the RTO (--restore-drill)",
    severity="high",
    refs=("DORA Art. 12(6)", "ISO/IEC 27001 A.5.30"),
    opt_in="--restore-drill",
    reads=("drill_restore",),
    scenarios=(),  # the RTO is minutes: tests/lab/test_restore_drill_lab.py sets a tiny one
    rationale="A recovery that works but takes longer than the business can wait is a failed "
    "recovery; the drill measures it on this host's own backup and archive.",
    detail="`--restore-drill` only: the time from the start of the restore (the copy of the "
    "backup) to the restored cluster answering at the target is within `walguard_rto_minutes`",
)
def test_restore_time(drill: DrillResult, policy: Policy) -> str:
    if not drill.restored or drill.restore_s is None:
        raise FactUnavailable("cannot measure the restore time: the drill did not restore")
    took = drill.restore_s
    copy = f" (copy {drill.copy_s:.1f} s, replay and start {took - (drill.copy_s or 0):.1f} s)"
    if took > policy.rto_minutes * 60:
        fail(f"the restore took {took:.1f} s{copy}, beyond the RTO of {policy.rto_minutes:g} min")
    return f"the restore took {took:.1f} s{copy}, within the RTO of {policy.rto_minutes:g} min"
