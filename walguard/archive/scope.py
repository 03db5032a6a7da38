"""What the archiver controls may conclude on a host: whether its archiver runs at all (a
standby's does not unless archive_mode = always), and whether the archive is a local directory
walguard can read or a tool's repository only the tool's own check can vouch for."""

from __future__ import annotations

from walguard.archive.check_output import read_check
from walguard.archive.command import reading_of
from walguard.controls import NotApplicable, fail
from walguard.errors import FactUnavailable
from walguard.facts.archive_dir import ArchiveDir
from walguard.facts.postgres_state import Postgres
from walguard.policy.model import Policy

# Archiving that writes somewhere walguard cannot list: only the tool can check its repository.
REPOSITORY_KINDS = frozenset({"tool", "approved"})


def require_archiver(pg: Postgres, policy: Policy) -> None:
    """A standby archives only with archive_mode = always; with on, the primary does."""
    if not pg.in_recovery:
        return
    mode = pg.setting("archive_mode").setting
    if mode == "always":
        return
    if policy.standby_archiving:
        fail(
            f"this standby has archive_mode = {mode}, so it archives nothing; the policy "
            "requires standby archiving (archive_mode = always)"
        )
    raise NotApplicable(
        f"standby (archive_mode = {mode}): the primary archives; a standby archives only with "
        "archive_mode = always (walguard_standby_archiving)"
    )


def repository_verdict(pg: Postgres, archive: ArchiveDir, policy: Policy) -> str | None:
    """None when archiving is a local copy into the archive directory (the caller reads it).
    Otherwise the tool's own check decides: its PASS message, or FAIL/ERROR here."""
    found = reading_of(pg, policy)
    if found.kind not in REPOSITORY_KINDS:
        return None
    what = found.tool or "an approved archive command"
    if policy.archive_check_command is None:
        example = f" (e.g. {found.repository_check})" if found.repository_check else ""
        raise FactUnavailable(
            f"cannot verify: WAL is archived by {what} into its own repository, which walguard "
            f"cannot list; name the tool's check in walguard_archive_check_command{example}"
        )
    if archive.check is None:
        raise FactUnavailable(f"{policy.archive_check_command} was not run (no output)")
    rc, output = archive.check
    reading = read_check(policy.archive_check_command, rc, output)
    if reading.ok is None:
        raise FactUnavailable(f"cannot verify: {reading.words}")
    if not reading.ok:
        fail(f"{policy.archive_check_command} reported failure: {reading.words}")
    return (
        f"archived by {what}: {policy.archive_check_command} passed ({reading.words}; "
        "the repository is the tool's to check)"
    )
