"""The data-loss window (WG-RST-002): which commits the archive can give back and which wait on
the primary, read from the WAL records themselves with the server's own `pg_waldump`.

The collector prints `wal_window` as `KEY VALUE` lines:

    standby                                   (a server in recovery: nothing else follows)
    now EPOCH                                 (the server's clock_timestamp())
    current WALFILE                           (pg_walfile_name(pg_current_wal_lsn()))
    server-archived NAME                      (pg_stat_archiver.last_archived_wal, cut to 24)
    archive-newest NAME                       (the newest whole segment in the archive dir)
    boundary NAME                             (the older of the two: the last archived segment)
    archived-commit SEGMENT|WHAT              (the boundary and up to two before it, newest first)
    unarchived-count N                        (segments after the boundary up to the current)
    unarchived SEGMENT|WHAT                   (oldest first, until one holds a commit)
    newest-commit SEGMENT|WHAT                (the current segment and back, until a commit)

WHAT is `commit <pg_waldump's line>`, `none`, `missing` or `error <pg_waldump's last error>`.
A commit line reads, with TZ=UTC (pg_waldump prints timestamps in the local zone):

    rmgr: Transaction len (rec/tot): 34/34, tx: 735, lsn: 0/01512F80, prev 0/01512F48,
    desc: COMMIT 2026-12-06 20:12:35.123456 UTC
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from walguard.errors import FactUnavailable
from walguard.facts.sections import Section

_COMMIT = re.compile(
    r"\btx:\s*(\d+), lsn: ([0-9A-F]+/[0-9A-F]+),.*\bdesc: COMMIT(?:_PREPARED)? "
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([A-Za-z]+|[+-][\d:]+)"
)
_SEGMENT = re.compile(r"[0-9A-F]{24}")
_FIELDS = ("now", "current", "server-archived", "archive-newest", "boundary", "unarchived-count")


@dataclass(frozen=True)
class Commit:
    segment: str
    xid: int
    lsn: str
    at: datetime  # UTC

    @property
    def at_text(self) -> str:
        return self.at.strftime("%Y-%m-%d %H:%M:%S UTC")


# How pg_waldump says it reached the end of the WAL written so far (in the current segment, past
# the last record: zeroes or a recycled file's old records); any other error means it could not
# read the segment.
_END_OF_WAL = ("error in WAL record at", "could not find a valid record after")


@dataclass(frozen=True)
class Scan:
    """One segment as pg_waldump read it."""

    segment: str
    commit: Commit | None
    error: str | None = None  # pg_waldump's last error line, when it printed one
    missing: bool = False  # the segment was not found where it was looked for

    @property
    def end_of_wal(self) -> bool:
        """pg_waldump stopped where the written WAL ends, not for want of reading it."""
        return self.error is not None and any(s in self.error for s in _END_OF_WAL)


@dataclass(frozen=True)
class WalWindow:
    standby: bool
    now: datetime | None = None
    current: str | None = None
    server_archived: str | None = None
    archive_newest: str | None = None
    boundary: str | None = None
    archived: tuple[Scan, ...] = ()  # newest first
    unarchived_count: int = 0
    unarchived: tuple[Scan, ...] = ()  # oldest first
    newest: tuple[Scan, ...] = ()  # newest first

    @property
    def archived_commit(self) -> Commit | None:
        return next((s.commit for s in self.archived if s.commit), None)

    @property
    def first_unarchived(self) -> Commit | None:
        return next((s.commit for s in self.unarchived if s.commit), None)

    @property
    def newest_commit(self) -> Commit | None:
        return next((s.commit for s in self.newest if s.commit), None)

    def waited(self) -> timedelta:
        """How long the oldest commit not yet archived has waited: the data the primary's loss
        would lose now (zero when none waits). FactUnavailable when it cannot be told: a segment
        after the last archived one that pg_waldump could not read (only the current segment
        may end early, where the WAL written so far ends), or no commit in the segments read
        though more follow. A primary only, once something was archived (`boundary`)."""
        if self.standby or self.now is None or self.current is None or self.boundary is None:
            raise FactUnavailable("the data-loss window of a primary that has archived")
        for scan in self.unarchived:
            current_end = scan.segment == self.current and scan.end_of_wal
            if scan.commit is None and (scan.missing or scan.error) and not current_end:
                why = scan.error or "not found"
                raise FactUnavailable(f"cannot read {scan.segment} with pg_waldump: {why}")
        first = self.first_unarchived
        if first is None:
            if self.unarchived_count > len(self.unarchived):
                raise FactUnavailable(
                    f"no commit in the oldest {len(self.unarchived)} of "
                    f"{self.unarchived_count} segments after {self.boundary}: the window "
                    "was not measured"
                )
            return timedelta(0)
        return max(self.now - first.at, timedelta(0))

    def record(self) -> dict[str, Any]:
        """What results.json keeps (and the metrics file shows): the window measured, or why
        it was not."""
        if self.standby:
            return {"standby": True}
        if self.boundary is None:
            return {"error": "nothing has been archived"}
        try:
            waited = self.waited()
        except FactUnavailable as exc:
            return {"error": str(exc)}
        first, back = self.first_unarchived, self.archived_commit
        return {
            "waited_s": round(waited.total_seconds(), 3),
            "oldest_unarchived_commit": _commit_record(first),
            "newest_archived_commit": _commit_record(back),
            "last_archived_segment": self.boundary,
            "current_segment": self.current,
        }


def _commit_record(commit: Commit | None) -> dict[str, Any] | None:
    if commit is None:
        return None
    return {"xid": commit.xid, "at": commit.at_text, "segment": commit.segment}


def parse_commit(line: str, segment: str) -> Commit:
    match = _COMMIT.search(line)
    if match is None:
        raise FactUnavailable(f"{segment}: pg_waldump printed no commit record: {line[:200]!r}")
    xid, lsn, stamp, zone = match.groups()
    if zone != "UTC":
        raise FactUnavailable(f"{segment}: pg_waldump printed a commit time in {zone}, not UTC")
    try:
        at = datetime.fromisoformat(stamp).replace(tzinfo=UTC)
    except ValueError:
        raise FactUnavailable(f"{segment}: unreadable commit time {stamp!r}") from None
    return Commit(segment, int(xid), lsn, at)


def _scan(value: str) -> Scan:
    segment, _, what = value.partition("|")
    if not _SEGMENT.fullmatch(segment):
        raise FactUnavailable(f"wal_window: not a WAL segment name: {segment[:40]!r}")
    kind, _, rest = what.partition(" ")
    if kind == "commit":
        return Scan(segment, parse_commit(rest, segment))
    if kind == "none":
        return Scan(segment, None)
    if kind == "missing":
        return Scan(segment, None, missing=True)
    if kind == "error":
        return Scan(segment, None, error=rest.strip() or "pg_waldump failed")
    raise FactUnavailable(f"wal_window: {segment}: unreadable result {what[:80]!r}")


def parse_wal_window(sections: dict[str, Section]) -> WalWindow:
    section = sections.get("wal_window")
    if section is None:
        raise FactUnavailable("collector output has no wal_window section")
    lines = [line for line in section.output.splitlines() if line.strip()]
    if section.rc != 0:
        raise FactUnavailable(
            f"the data-loss window was not read (exit {section.rc}): "
            f"{lines[-1] if lines else 'no output'}"
        )
    if lines == ["standby"]:
        return WalWindow(standby=True)
    fields: dict[str, str] = {}
    archived: list[Scan] = []
    unarchived: list[Scan] = []
    newest: list[Scan] = []
    lists = {"archived-commit": archived, "unarchived": unarchived, "newest-commit": newest}
    for line in lines:
        key, _, value = line.partition(" ")
        if key in lists:
            lists[key].append(_scan(value))
        elif key in _FIELDS:
            fields[key] = value.strip()
        else:
            raise FactUnavailable(f"wal_window: unexpected line {line[:120]!r}")
    try:
        now = datetime.fromtimestamp(float(fields["now"]), UTC)
    except (KeyError, ValueError, OverflowError):
        raise FactUnavailable("wal_window: the server's clock was not read") from None
    current = fields.get("current", "")
    if not _SEGMENT.fullmatch(current):
        raise FactUnavailable(f"wal_window: the server's current WAL file is {current!r}")
    count = fields.get("unarchived-count", "0")
    if not count.isdigit():
        raise FactUnavailable(f"wal_window: unarchived-count {count!r}")
    return WalWindow(
        standby=False,
        now=now,
        current=current,
        server_archived=fields.get("server-archived") or None,
        archive_newest=fields.get("archive-newest") or None,
        boundary=fields.get("boundary") or None,
        archived=tuple(archived),
        unarchived_count=int(count),
        unarchived=tuple(unarchived),
        newest=tuple(newest),
    )
