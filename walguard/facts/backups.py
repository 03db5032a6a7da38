"""Base backups (WG-RST-001): the backups found in the policy's base backup directory, each with
what its backup_label says, and the server's own `pg_verifybackup` of the newest.

The collector prints `base_backups` as one block per backup directory:

    == NAME|MTIME
    format plain|tar|unknown
    <the backup_label's lines: START WAL LOCATION, START TIME, LABEL, START TIMELINE, ...>
    manifest                      (when a backup_manifest is there)

and `base_backup_verify` as `== NAME` then pg_verifybackup's own output (its exit status is the
section's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from walguard.errors import FactUnavailable
from walguard.facts.sections import Section

# backup_label: `START WAL LOCATION: 0/4000028 (file 000000010000000000000004)`.
_START_WAL = re.compile(r"^START WAL LOCATION: (\S+) \(file ([0-9A-F]{24})\)$", re.MULTILINE)
_START_TIME = re.compile(r"^START TIME: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\S+)$", re.MULTILINE)
_LABEL = re.compile(r"^LABEL: (.*)$", re.MULTILINE)
_TIMELINE = re.compile(r"^START TIMELINE: (\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class BaseBackup:
    name: str  # its directory under the base backup directory
    format: str  # plain, tar or unknown
    has_manifest: bool
    start_lsn: str | None = None
    start_wal: str | None = None  # the segment holding START WAL LOCATION
    start_time: datetime | None = None  # UTC
    start_time_text: str | None = None  # as the label has it
    label: str | None = None
    timeline: int | None = None
    problem: str | None = None  # why its label could not be read

    @property
    def usable_label(self) -> bool:
        return self.problem is None and self.start_wal is not None and self.start_time is not None


@dataclass(frozen=True)
class Verification:
    backup: str | None  # the backup pg_verifybackup checked (None: there was none to check)
    rc: int
    output: str


@dataclass(frozen=True)
class BaseBackups:
    directory: str
    backups: tuple[BaseBackup, ...]
    verification: Verification | None  # None: not run (no section)
    read_at: datetime | None = None  # the host's clock when it was read (the `date` section)
    exists: bool = True  # the directory is there

    def newest(self) -> BaseBackup | None:
        dated = [b for b in self.backups if b.start_time is not None]
        if not dated:
            return None
        return max(dated, key=lambda b: b.start_time or datetime.min.replace(tzinfo=UTC))


def parse_backups(sections: dict[str, Section], directory: str) -> BaseBackups:
    """The base backups from the collector's sections; FactUnavailable when they were not read."""
    listed = sections.get("base_backups")
    if listed is None:
        raise FactUnavailable("the base backup directory was not read (no base_backups section)")
    if listed.rc == 2 and listed.output.startswith("no such directory"):
        return BaseBackups(directory, (), None, host_time(sections.get("date")), exists=False)
    if listed.rc != 0:
        said = listed.output.strip().splitlines()
        raise FactUnavailable(
            f"cannot read the base backups in {directory}: "
            f"{said[-1] if said else f'exit {listed.rc}'}"
        )
    backups = tuple(_backup(block) for block in _blocks(listed.output))
    return BaseBackups(directory, backups, _verification(sections.get("base_backup_verify")),
                       host_time(sections.get("date")))  # fmt: skip


def _blocks(text: str) -> list[tuple[str, list[str]]]:
    blocks: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("== "):
            blocks.append((line[3:], []))
        elif blocks:
            blocks[-1][1].append(line)
    return blocks


def _backup(block: tuple[str, list[str]]) -> BaseBackup:
    head, lines = block
    name = head.rsplit("|", 1)[0]
    fmt = "unknown"
    if lines and lines[0].startswith("format "):
        fmt = lines[0].split(" ", 1)[1].strip()
        lines = lines[1:]
    has_manifest = bool(lines) and lines[-1] == "manifest"
    if has_manifest:
        lines = lines[:-1]
    label = "\n".join(lines)
    if fmt == "unknown":
        return BaseBackup(name, fmt, has_manifest, problem="neither backup_label nor base.tar")
    wal = _START_WAL.search(label)
    when = _START_TIME.search(label)
    if wal is None or when is None:
        first = next((line for line in lines if line.strip()), "nothing")
        problem = f"its backup_label cannot be read ({first.strip()[:120]})"
        return BaseBackup(name, fmt, has_manifest, problem=problem)
    start_time = _utc(when.group(1), when.group(2))
    label_match = _LABEL.search(label)
    tli = _TIMELINE.search(label)
    return BaseBackup(
        name,
        fmt,
        has_manifest,
        start_lsn=wal.group(1),
        start_wal=wal.group(2),
        start_time=start_time,
        start_time_text=f"{when.group(1)} {when.group(2)}",
        label=label_match.group(1).strip() if label_match else None,
        timeline=int(tli.group(1)) if tli else None,
        problem=None
        if start_time is not None
        else (
            f"its START TIME is in zone {when.group(2)}, which walguard cannot place (set the "
            "server's log_timezone to UTC)"
        ),
    )


def _utc(text: str, zone: str) -> datetime | None:
    """The label's START TIME is in the server's log_timezone; only UTC/GMT (or a numeric
    offset) can be placed without the zone database of the host."""
    base = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    if zone in ("UTC", "GMT", "Etc/UTC"):
        return base.replace(tzinfo=UTC)
    offset = re.fullmatch(r"([+-])(\d\d)(?::?(\d\d))?", zone)
    if offset is None:
        return None
    sign = 1 if offset.group(1) == "+" else -1
    delta = timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3) or 0))
    return (base - sign * delta).replace(tzinfo=UTC)


def _verification(section: Section | None) -> Verification | None:
    if section is None:
        return None
    lines = section.output.strip().splitlines()
    if lines and lines[0].startswith("== "):
        return Verification(lines[0][3:], section.rc, "\n".join(lines[1:]).strip())
    return Verification(None, section.rc, section.output.strip())


def host_time(section: Section | None) -> datetime | None:
    """The host's clock from the collector's `date` section (None: not read)."""
    if section is None or section.rc != 0:
        return None
    try:
        return datetime.fromtimestamp(int(section.output.strip()), UTC)
    except ValueError:
        return None
