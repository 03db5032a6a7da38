"""Archive settings: is the running server configured to archive every WAL segment, safely, often
enough for the RPO?"""

from __future__ import annotations

from walguard.archive.command import reading_of
from walguard.controls import control, fail
from walguard.facts.postgres_state import Postgres
from walguard.policy.model import Policy

REFS = ("BSI APP.4.3.A24", "DORA Art. 12")


@control(
    "WG-ARC-001",
    "archive_mode is on in the running server, with no pending restart",
    severity="critical",
    refs=REFS,
    remediation="WG-ARC-001.sh",
    disruptive=True,
    reads=("postgresql.settings.archive_mode",),
    scenarios=("archive-mode-off-pending-restart", "archive-mode-off", "wal-level-minimal"),
    rationale="Without archive_mode no WAL is archived and point-in-time recovery is "
    "impossible; a pending change to it takes effect at the next restart.",
)
def test_archive_mode_on(pg: Postgres, policy: Policy) -> None:
    s = pg.setting("archive_mode")
    if pg.in_recovery and policy.standby_archiving and s.setting != "always":
        fail(
            f"this standby has archive_mode = {s.setting!r}: it archives nothing during "
            "recovery, and the policy requires standby archiving (archive_mode = always)"
        )
    if s.setting not in ("on", "always"):
        fail(f"archive_mode is {s.setting!r} in the running server")
    if s.pending_restart:
        fail(
            "archive_mode is on now, but a configuration change to it is pending a restart "
            f"(set from {s.source}): the next restart turns archiving off"
        )


@control(
    "WG-ARC-002",
    "wal_level is replica or logical",
    severity="critical",
    refs=REFS,
    reads=("postgresql.settings.wal_level",),
    scenarios=("wal-level-minimal",),
    rationale="wal_level minimal does not write enough WAL for archive recovery.",
)
def test_wal_level(pg: Postgres) -> None:
    level = pg.setting("wal_level").setting
    if level not in ("replica", "logical"):
        fail(f"wal_level is {level!r}, archive recovery needs replica")


@control(
    "WG-ARC-003",
    "WAL archiving (archive_command or archive_library) never overwrites an archived segment",
    severity="high",
    refs=REFS,
    remediation="WG-ARC-003.sh",
    reads=("postgresql.settings.archive_command", "postgresql.settings.archive_library"),
    scenarios=("archive-mode-off", "wal-level-minimal", "archive-command-unguarded"),
    rationale="An archive command that overwrites can silently replace good WAL with a "
    "different file (e.g. from a second cluster archiving to the same place); one that hides "
    "its failures, writes elsewhere or runs something walguard cannot read proves nothing.",
    detail="archiving (archive_command or archive_library) never overwrites an archived segment: a "
    "guarded copy into the policy's directory, a known tool by executable and subcommand "
    "(pgBackRest, WAL-G with WALG_PREVENT_WAL_OVERWRITE, Barman, pg_probackup), basic_archive, or "
    "a command the policy approves; extra commands, hidden failures and unknown wrappers fail",
)
def test_archive_command_is_safe(pg: Postgres, policy: Policy) -> None:
    found = reading_of(pg, policy).overwrite
    if not found.ok:
        fail(found.message)


@control(
    "WG-ARC-004",
    "archive_command succeeds only for an identical existing segment",
    severity="low",
    refs=("PostgreSQL docs 26.3.1",),
    remediation="WG-ARC-004.sh",
    reads=("postgresql.settings.archive_command",),
    rationale="PostgreSQL's docs ask an archive command to succeed when the file already "
    "exists with identical contents and to fail when it differs.",
    detail="archive_command succeeds only for an identical existing segment (`test -f … || cp` "
    "does not)",
)
def test_archive_command_compares_existing(pg: Postgres, policy: Policy) -> None:
    found = reading_of(pg, policy).identical
    if not found.ok:
        fail(found.message)


@control(
    "WG-ARC-005",
    "archive_timeout is set and no larger than the RPO",
    severity="high",
    refs=REFS,
    remediation="WG-ARC-005.sh",
    reads=("postgresql.settings.archive_timeout",),
    scenarios=("archive-timeout-off",),
    rationale="On a quiet server a segment can stay open for hours; archive_timeout bounds "
    "how much committed work is not yet archived.",
)
def test_archive_timeout_within_rpo(pg: Postgres, policy: Policy) -> None:
    raw = pg.setting("archive_timeout").setting
    seconds = int(raw)
    if seconds <= 0:
        fail("archive_timeout is 0 (off): a quiet server may not archive for hours")
    if seconds > policy.rpo_minutes * 60:
        fail(f"archive_timeout is {seconds} s, longer than the RPO of {policy.rpo_minutes:g} min")
