"""The archived files: is the last one there, is the chain unbroken, are the segments whole and
this cluster's, are their owner and modes safe?"""

from __future__ import annotations

from collections.abc import Mapping

from walguard.archive.scope import repository_verdict, require_archiver
from walguard.archive.walnames import (
    backup_history_segment,
    chain_ranges,
    history_name,
    is_segment,
    missing_in,
    parse_history,
    segment_name,
    segment_number,
    timeline,
)
from walguard.controls import control, fail
from walguard.errors import FactUnavailable
from walguard.facts.archive_dir import ArchiveDir, SegmentHeader
from walguard.facts.archive_ownership import FileMode, RestoreUser
from walguard.facts.postgres_state import Postgres
from walguard.policy.model import Policy

REFS = ("BSI APP.4.3.A24", "DORA Art. 12")


_KINDS = {"l": "symlink", "d": "directory", "f": "file"}


def _chain(pg: Postgres, archive: ArchiveDir, names: list[str]) -> list[tuple[int, int]]:
    """The timeline history the archive must let recovery follow; FAIL when a history file is
    not archived."""
    if pg.timeline <= 1:
        return []
    name = history_name(pg.timeline)
    if name not in names:
        fail(
            f"{name} is not in {archive.where}: recovery cannot follow the switch to timeline "
            f"{pg.timeline}"
        )
    text = archive.histories.get(name)
    if text is None:
        raise FactUnavailable(f"the contents of {name} were not read")
    try:
        chain = parse_history(text)
    except ValueError as exc:
        raise FactUnavailable(f"{name}: {exc}") from None
    for tli, _ in chain:
        if tli > 1 and history_name(tli) not in names:
            fail(f"{history_name(tli)} is not in {archive.where}: the timeline chain is broken")
    return chain


@control(
    "WG-ACT-004",
    "the last archived segment is really in the archive, a whole file",
    severity="critical",
    refs=REFS,
    reads=("postgresql.archiver", "archiver_before", "archive_files", "archive_check"),
    scenarios=(
        "archive-dir-missing",
        "archive-dir-not-a-mount",
        "archiver-stats-reset",
        "last-segment-missing",
    ),
    rationale="Tools have reported segments archived that never arrived; only the file "
    "itself proves it, and a partial copy or a link to elsewhere does not.",
    detail="the segment reported as last archived is in the archive: a regular file of full size. "
    "`pg_stat_archiver` is read before the archive is listed, so a segment archived while the host "
    "is read is never missing; archiving that resumed meanwhile is an ERROR naming the race, never "
    "a FAIL (also for WG-ACT-005/007)",
)
def test_last_archived_present(pg: Postgres, archive: ArchiveDir, policy: Policy) -> str | None:
    require_archiver(pg, policy)
    via_tool = repository_verdict(pg, archive, policy)
    if via_tool:
        return via_tool
    last = pg.archiver.last_archived_wal
    if archive.archived_before is not None:
        # The server's statistics as they were when the directory was listed: what the listing
        # must hold. Whatever was archived later is judged by the next audit.
        if last and archive.archived_before.last_archived_wal is None:
            raise FactUnavailable(
                f"{archived_while_reading(pg, archive)}: nothing had been archived when the "
                "directory was listed; audit again"
            )
        last = archive.archived_before.last_archived_wal
    if not last:
        fail("pg_stat_archiver reports no last archived segment")
    if not archive.exists:
        fail(f"{archive.path} does not exist")
    found = {f.name: f for f in archive.files}
    if last not in found:
        before = _archived_after_listing(pg, archive, last)
        if before is not None and found.get(before) and found[before].size == pg.segment_size:
            return (
                f"{last} was archived after the directory was listed; the segment before it, "
                f"{before}, is there, whole"
            )
        fail(f"{last} is reported archived but is not in {archive.where}")
    # After a base backup the last archived file is its history file (X.00000028.backup), not
    # a segment: the segment it names, the backup's start, was archived before it and is judged.
    segment = backup_history_segment(last)
    if segment is not None:
        if segment not in found:
            fail(
                f"{segment} is not in {archive.where}, though the backup history file {last} "
                "archived after it is"
            )
        last = segment
    if is_segment(last):
        f = found[last]
        if f.kind != "f":
            fail(
                f"{archive.where}/{last} is a {_KINDS.get(f.kind, f.kind)}, not a regular "
                "file: the archive does not hold the segment itself"
            )
        if f.size != pg.segment_size:
            fail(f"{archive.where}/{last} is {f.size} bytes, a segment is {pg.segment_size}")
    return None


def archived_while_reading(pg: Postgres, archive: ArchiveDir) -> str:
    """What the archiver did between the listing and the server's statistics, in words."""
    before = archive.archived_before
    count = pg.archiver.archived_count - before.archived_count if before else 0
    was = (before.last_archived_wal if before else None) or "none"
    return (
        f"archiving went on while the audit read the host ({count} archived after "
        f"{archive.where} was listed: last archived {was} then, "
        f"{pg.archiver.last_archived_wal or 'none'} when the server was asked)"
    )


def _archived_after_listing(pg: Postgres, archive: ArchiveDir, last: str) -> str | None:
    """The segment before `last` when `last` may have been archived after the directory was
    listed (the listing and the server's statistics are read a moment apart), for a collector
    that did not read the statistics before the listing."""
    when = pg.archiver.last_archived_epoch
    if archive.archived_before is not None:
        return None
    if not is_segment(last) or when is None or archive.listed_at is None:
        return None
    if when < archive.listed_at:
        return None
    number = segment_number(last, pg.segment_size)
    return segment_name(timeline(last), number - 1, pg.segment_size) if number > 0 else None


@control(
    "WG-ACT-005",
    "the archive has no gap along the current timeline's history",
    severity="high",
    refs=REFS,
    reads=("postgresql.timeline", "history_files", "archive_check"),
    scenarios=("archive-dir-missing", "archive-dir-not-a-mount", "archive-gap"),
    rationale="Recovery replays WAL in order and stops at the first missing segment: "
    "everything after a gap is unrecoverable; after a promotion it needs the timeline history "
    "files and the old timeline's segments up to the switch.",
    detail="no gap along the timeline chain: the history files are archived and each timeline is "
    "complete up to its switch point",
)
def test_no_gap(pg: Postgres, archive: ArchiveDir, policy: Policy) -> str | None:
    local = _local_chain(pg, archive, policy)
    if isinstance(local, str):
        return local
    names, ranges = local
    missing = missing_in(names, ranges, pg.segment_size)
    if missing:
        fail(
            "segments missing from the archive: "
            + ", ".join(first if first == last else f"{first}..{last}" for first, last in missing)
        )
    spans = ", ".join(
        f"timeline {tli}: {segment_name(tli, a, pg.segment_size)}.."
        f"{segment_name(tli, b, pg.segment_size)}"
        for tli, a, b in ranges
    )
    return f"no gap ({spans})"


def _local_chain(
    pg: Postgres, archive: ArchiveDir, policy: Policy
) -> str | tuple[list[str], list[tuple[int, int, int]]]:
    """The archived names and the ranges of the timeline chain to check; or, where a tool
    archives into its own repository, its check's PASS message (FAIL/ERROR raise)."""
    require_archiver(pg, policy)
    via_tool = repository_verdict(pg, archive, policy)
    if via_tool:
        return via_tool
    if not archive.exists:
        fail(f"{archive.path} does not exist")
    names = [f.name for f in archive.files]
    ranges = chain_ranges(names, pg.timeline, _chain(pg, archive, names), pg.segment_size)
    before = archive.archived_before
    if not ranges and before and pg.archiver.archived_count > before.archived_count:
        raise FactUnavailable(
            f"{archived_while_reading(pg, archive)}: the listing holds no segment of timeline "
            f"{pg.timeline} yet; audit again"
        )
    if not ranges:
        fail(
            f"{archive.where} holds no segment of timeline {pg.timeline} or its history: "
            "nothing shows the archive is complete"
        )
    return names, ranges


def _segment_problems(
    pg: Postgres, archive: ArchiveDir, ranges: list[tuple[int, int, int]]
) -> list[str]:
    def wanted(name: str) -> bool:
        n = segment_number(name, pg.segment_size)
        return any(t == timeline(name) and lo <= n <= hi for t, lo, hi in ranges)

    problems = []
    for f in archive.files:
        if not is_segment(f.name) or not wanted(f.name):
            continue
        if f.kind != "f":
            problems.append(f"{f.name} is a {_KINDS.get(f.kind, f.kind)}")
        elif f.size != pg.segment_size:
            problems.append(f"{f.name} is {f.size} bytes (partial)")
    if not pg.system_identifier:
        raise FactUnavailable("this server's system identifier was not read")
    for h in archive.headers:
        if not wanted(h.name) or any(p.startswith(h.name) for p in problems):
            continue
        expected_address = segment_number(h.name, pg.segment_size) * pg.segment_size
        if not h.info & SegmentHeader.LONG_HEADER or h.segment_size != pg.segment_size:
            problems.append(f"{h.name} does not start with a WAL segment header")
        elif h.system_identifier != pg.system_identifier:
            problems.append(
                f"{h.name} comes from another cluster (system identifier "
                f"{h.system_identifier}, this server's is {pg.system_identifier})"
            )
        # A new timeline's first segment starts with its parent's WAL up to the switch point,
        # so its header may name an earlier timeline; never a later one.
        elif not 1 <= h.timeline <= timeline(h.name) or h.page_address != expected_address:
            problems.append(
                f"{h.name} holds other WAL (timeline {h.timeline}, address "
                f"{h.page_address >> 32:X}/{h.page_address & 0xFFFFFFFF:X})"
            )
    return problems


def _archived_when_listed(
    pg: Postgres, archive: ArchiveDir, ranges: list[tuple[int, int, int]]
) -> list[tuple[int, int, int]]:
    """The ranges up to the segment the server had archived when the directory was listed: a
    newer one may have been in the middle of its copy then, which is no partial segment."""
    last = archive.archived_before.last_archived_wal if archive.archived_before else None
    if not last or not is_segment(last):
        return ranges
    tli, number = timeline(last), segment_number(last, pg.segment_size)
    return [(t, lo, min(hi, number) if t == tli else hi) for t, lo, hi in ranges]


@control(
    "WG-ACT-007",
    "archived segments are whole segments of this cluster",
    severity="critical",
    refs=REFS,
    reads=(
        "postgresql.system_identifier",
        "postgresql.timeline",
        "segment_headers",
        "archive_check",
    ),
    scenarios=(
        "archive-dir-missing",
        "archive-dir-not-a-mount",
        "segment-truncated",
        "segment-foreign",
    ),
    rationale="Recovery needs every segment whole and from this cluster: a partial copy that "
    "`test -f … || cp` then treats as archived forever, a symlink to a file elsewhere, or "
    "another server's segment under this name each stop a restore.",
    detail="archived segments are whole segments of this cluster: regular files of the segment "
    "size, and the newest carry a WAL header with this server's system identifier, timeline and "
    "address",
)
def test_segments_whole_and_ours(pg: Postgres, archive: ArchiveDir, policy: Policy) -> str | None:
    local = _local_chain(pg, archive, policy)
    if isinstance(local, str):
        return local
    problems = _segment_problems(pg, archive, _archived_when_listed(pg, archive, local[1]))
    if problems:
        fail(
            f"{len(problems)} archived segments in {archive.where} are not whole segments of "
            f"this cluster: " + "; ".join(problems[:5]) + ("; …" if len(problems) > 5 else "")
        )
    checked = ", ".join(h.name for h in archive.headers) or "none"
    return f"sizes and kinds checked; headers of the newest: {checked}"


@control(
    "WG-ACT-008",
    "archived files are the archive owner's, read by the restore user, written by no one else",
    severity="critical",
    refs=REFS,
    remediation="WG-ACT-008.sh",
    reads=("archive_perms", "restore_user", "archive_files"),
    scenarios=(
        "archive-dir-missing",
        "archive-dir-not-a-mount",
        "segment-world-writable",
        "segment-root-owned",
    ),
    rationale="Recovery's restore_command runs as the cluster's owner, not as root: a segment "
    "it cannot read stops the restore there. A segment the archive's group or anyone may write "
    "can be replaced by WAL that a recovery would replay.",
    detail="every archived segment and history file in the checked range is the archive owner's, "
    "writable by no one else (no group/other write bit), and readable by the user "
    "`restore_command` runs as (`walguard_restore_user`, by default the archive owner); the "
    "message names the first few files and a count",
)
def test_archived_files_owner_and_modes(
    pg: Postgres, archive: ArchiveDir, policy: Policy
) -> str | None:
    local = _local_chain(pg, archive, policy)
    if isinstance(local, str):
        return f"{local} (the repository's files are the tool's to keep)"
    names, ranges = local
    if isinstance(archive.ownership, str):
        raise FactUnavailable(f"the archived files' owners and modes: {archive.ownership}")
    files, restore = archive.ownership.files, archive.ownership.restore
    # Regular files only: a link or anything else in the archive is WG-ACT-004/007's finding.
    regular = {f.name for f in archive.files if f.kind == "f"}
    checked = [
        n
        for n in names
        if n in regular and (_in_ranges(n, ranges, pg.segment_size) or n.endswith(".history"))
    ]
    problems: dict[str, list[str]] = {}
    for name in checked:
        f = files.get(name)
        if f is None:
            continue  # archived after the owners were listed: the next audit reads it
        for why in _wrong(f, policy, restore):
            problems.setdefault(why, []).append(name)
    if problems:
        fail("; ".join(f"{len(v)} {_few(v, files)} {why}" for why, v in problems.items()))
    return (
        f"{len(checked)} archived files: owned by {policy.archive_owner}, written by no one "
        f"else, readable by {restore.name}"
    )


def _wrong(f: FileMode, policy: Policy, restore: RestoreUser) -> list[str]:
    found = []
    if f.owner != policy.archive_owner:
        found.append(f"owned by {f.owner}:{f.group}, not {policy.archive_owner}")
    if f.mode & 0o022:
        found.append(f"writable by {'others' if f.mode & 0o002 else 'its group'}")
    if not restore.can_read(f):
        found.append(f"not readable by {restore.name}, whom the restore runs as")
    return found


def _in_ranges(name: str, ranges: list[tuple[int, int, int]], segment_size: int) -> bool:
    if not is_segment(name):
        return False
    n = segment_number(name, segment_size)
    return any(t == timeline(name) and lo <= n <= hi for t, lo, hi in ranges)


def _few(names: list[str], files: Mapping[str, FileMode]) -> str:
    """The first few files named with their mode, then how many more."""
    shown = ", ".join(f"{n} ({files[n].mode:04o})" for n in names[:3])
    more = f" and {len(names) - 3} more" if len(names) > 3 else ""
    return f"archived file{'s' if len(names) > 1 else ''} ({shown}{more})"
