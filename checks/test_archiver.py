"""The archiver at work: has it archived, is it failing, is it keeping up, does a probe arrive?"""

from __future__ import annotations

from walguard.archive.scope import require_archiver
from walguard.controls import control, fail
from walguard.facts.host import HostFacts
from walguard.facts.postgres_state import Postgres, ProbeResult
from walguard.policy.model import Policy

REFS = ("BSI APP.4.3.A24", "DORA Art. 12")


def selinux_cause(facts: HostFacts, policy: Policy) -> str | None:
    """When SELinux denies PostgreSQL on the archive volume, that is why archiving fails."""
    sel, archive = facts.selinux.value, facts.archive.value
    if sel is None or archive is None or not sel.enabled:
        return None
    dev = archive.mount_source.rsplit("/", 1)[-1]
    for avc in sel.avcs:
        if (
            avc.source_type == policy.selinux_postgres_domain
            and dev
            and avc.dev == dev
            and sel.archive_type != policy.selinux_archive_type
        ):
            return (
                f"archiving fails because SELinux denies {avc.source_type} access to "
                f"{archive.path} (labelled {sel.archive_type}); run the paired remediation"
            )
    return None


@control(
    "WG-ACT-001",
    "the archiver has archived something",
    severity="critical",
    refs=REFS,
    reads=("postgresql.archiver",),
    scenarios=("archiver-stats-reset",),
    rationale="archived_count 0 means no WAL has ever reached the archive since the "
    "statistics were reset.",
)
def test_something_archived(pg: Postgres, policy: Policy) -> None:
    require_archiver(pg, policy)
    if pg.archiver.archived_count <= 0:
        fail("pg_stat_archiver.archived_count is 0: nothing archived")


@control(
    "WG-ACT-002",
    "the archiver's last failure is not newer than its last success",
    severity="critical",
    refs=REFS,
    reads=("postgresql.archiver",),
    scenarios=("archive-command-permission-denied",),
    rationale="A failure after the last success means archiving is failing now: WAL piles "
    "up in pg_wal and the RPO is already being lost.",
    detail="the last archive failure is not newer than the last success",
)
def test_archiver_not_failing(pg: Postgres, facts: HostFacts, policy: Policy) -> None:
    require_archiver(pg, policy)
    a = pg.archiver
    if a.failed_count == 0 or a.last_failed_age_s is None:
        return
    failing = a.last_archived_age_s is None or a.last_failed_age_s < a.last_archived_age_s
    cause = selinux_cause(facts, policy)
    if failing and cause:
        fail(cause)
    if failing:
        fail(
            f"archiving is failing: {a.failed_count} failures, the last for {a.last_failed_wal} at "
            f"{a.last_failed_time}, after the last success ({a.last_archived_wal or 'none'} at "
            f"{a.last_archived_time or 'never'})"
        )


@control(
    "WG-ACT-003",
    "the .ready backlog is small and younger than the RPO",
    severity="high",
    refs=REFS,
    reads=("postgresql.status_files",),
    scenarios=("ready-backlog",),
    rationale="Segments waiting in archive_status/*.ready are not yet safe; a long or old "
    "queue means the archiver cannot keep up or is stuck.",
    detail="the .ready backlog is under the threshold and younger than the RPO",
)
def test_ready_backlog(pg: Postgres, policy: Policy) -> None:
    require_archiver(pg, policy)
    ready = pg.ready_files
    if len(ready) > policy.ready_backlog_max:
        fail(
            f"{len(ready)} segments wait to be archived (.ready), more than "
            f"{policy.ready_backlog_max}; oldest {max(f.age_s for f in ready) / 60:.1f} min"
        )
    if ready:
        oldest = max(ready, key=lambda f: f.age_s)
        if oldest.age_s > policy.rpo_minutes * 60:
            fail(
                f"{oldest.name} has waited {oldest.age_s / 60:.1f} min, longer than the RPO of "
                f"{policy.rpo_minutes:g} min"
            )


@control(
    "WG-ACT-006",
    "a freshly switched segment reaches the archive (--active-probe)",
    severity="critical",
    refs=REFS,
    opt_in="--active-probe",
    rationale="The only end-to-end proof: force a segment switch now and watch the archiver "
    "report it archived within a bound.",
    detail="`--active-probe` only: pg_switch_wal(), then the segment is archived within "
    "`--probe-wait`",
)
def test_active_probe(pg: Postgres, policy: Policy, probe: ProbeResult) -> None:
    require_archiver(pg, policy)
    if not probe.archived:
        fail(
            f"pg_switch_wal() closed {probe.segment}, but it was not archived within "
            f"{probe.waited_s:.0f} s (last archived: {probe.last_archived_wal or 'none'})"
        )
