"""The typed, immutable snapshot of one host's facts, with the raw outputs kept as evidence.

Each part is either parsed facts or the reason it could not be had (FactUnavailable); controls
read parts through accessors that raise, so a missing fact makes a control ERROR, never PASS.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, TypeVar

from walguard.errors import FactUnavailable
from walguard.sections import Section, need
from walguard.selinux import SelinuxFacts

T = TypeVar("T")


@dataclass(frozen=True)
class Part(Generic[T]):
    """Parsed facts, or why there are none."""

    value: T | None = None
    error: str | None = None

    def get(self) -> T:
        if self.value is None:
            raise FactUnavailable(self.error or "fact not collected")
        return self.value


@dataclass(frozen=True)
class ArchiveFile:
    name: str
    kind: str  # find's %y: f file, d directory, l symlink
    size: int
    mtime: float


@dataclass(frozen=True)
class ArchiveDir:
    path: str
    exists: bool
    owner: str = ""
    group: str = ""
    mode: int = 0
    kind: str = ""
    mount_target: str = ""
    mount_source: str = ""
    fstype: str = ""
    size_bytes: int = 0
    avail_bytes: int = 0
    files: tuple[ArchiveFile, ...] = ()

    @property
    def is_dedicated_mount(self) -> bool:
        return self.mount_target == self.path.rstrip("/") or (self.path == "/" == self.mount_target)


@dataclass(frozen=True)
class Setting:
    name: str
    setting: str
    pending_restart: bool
    source: str


@dataclass(frozen=True)
class Archiver:
    archived_count: int
    last_archived_wal: str | None
    last_archived_age_s: float | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_age_s: float | None
    last_archived_time: str | None
    last_failed_time: str | None


@dataclass(frozen=True)
class ReadyFile:
    name: str
    age_s: float


@dataclass(frozen=True)
class Postgres:
    version: str
    in_recovery: bool
    settings: Mapping[str, Setting]
    archiver: Archiver
    status_files: tuple[ReadyFile, ...]  # pg_ls_archive_statusdir(): .ready and .done
    current_walfile: str | None
    timeline: int
    segment_size: int

    def setting(self, name: str) -> Setting:
        try:
            return self.settings[name]
        except KeyError:
            raise FactUnavailable(f"pg_settings has no {name}") from None

    @property
    def ready_files(self) -> tuple[ReadyFile, ...]:
        return tuple(f for f in self.status_files if f.name.endswith(".ready"))


@dataclass(frozen=True)
class ProbeResult:
    """--active-probe: the segment pg_switch_wal() closed, and whether it reached the archive."""

    segment: str
    archived: bool
    waited_s: float
    last_archived_wal: str


@dataclass(frozen=True)
class HostFacts:
    host: str
    address: str
    reachable: bool
    error: str | None
    archive: Part[ArchiveDir]
    pg: Part[Postgres]
    service_active: Part[str]
    round_trips: int
    evidence: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    probe: Part[ProbeResult] = field(default_factory=lambda: Part(error="--active-probe not given"))
    selinux: Part[SelinuxFacts] = field(default_factory=lambda: Part(error="not collected"))
    # Remote output as the bytes it was (evidence); `evidence` holds it decoded for reading.
    raw: Mapping[str, bytes] = field(default_factory=lambda: MappingProxyType({}))
    # Each attempt at the SSH master connection: number, ok, seconds, reason.
    ssh_attempts: tuple[Mapping[str, object], ...] = ()

    def require_reachable(self) -> None:
        if not self.reachable:
            raise FactUnavailable(self.error or f"{self.host}: unreachable")


def _failed(what: str, section: Section) -> FactUnavailable:
    if section.rc == 124:  # timeout(1)'s status: the command hung
        return FactUnavailable(f"{what} timed out (no answer within the per-command timeout)")
    return FactUnavailable(f"{what} failed (rc {section.rc}): {section.output.strip()[:200]}")


def parse_archive_dir(sections: Mapping[str, Section], path: str) -> ArchiveDir:
    """From the stat, findmnt, df and find sections; raises FactUnavailable on anything odd."""
    stat = need(dict(sections), "archive_stat")
    if stat.rc != 0:
        if "No such file or directory" in stat.output:
            return ArchiveDir(path=path, exists=False)
        raise _failed(f"stat {path}", stat)
    fields = stat.output.strip().split("|")
    if len(fields) != 6 or not all(fields):
        raise FactUnavailable(f"unparsable stat output for {path}: {stat.output.strip()[:200]!r}")
    owner, group, mode, kind = fields[0], fields[1], fields[2], fields[3]
    try:
        mode_bits = int(mode, 8)
    except ValueError:
        raise FactUnavailable(f"unparsable mode {mode!r} for {path}") from None
    mount = parse_findmnt_pairs(need(dict(sections), "archive_mount"))
    total, avail = parse_df(need(dict(sections), "archive_df"))
    files = parse_find_files(need(dict(sections), "archive_files"))
    return ArchiveDir(
        path=path,
        exists=True,
        owner=owner,
        group=group,
        mode=mode_bits,
        kind=kind,
        mount_target=mount.get("TARGET", ""),
        mount_source=mount.get("SOURCE", ""),
        fstype=mount.get("FSTYPE", ""),
        size_bytes=total,
        avail_bytes=avail,
        files=files,
    )


def parse_findmnt_pairs(section: Section) -> dict[str, str]:
    """`findmnt -n -P -o TARGET,SOURCE,FSTYPE,OPTIONS` prints KEY="value" pairs, shell-quoted."""
    if section.rc != 0 or not section.output.strip():
        raise _failed("findmnt", section)
    line = section.output.strip().splitlines()[0]
    pairs = {}
    try:
        for token in shlex.split(line):
            key, sep, value = token.partition("=")
            if not sep:
                raise ValueError(token)
            pairs[key] = value
    except ValueError:
        raise FactUnavailable(f"unparsable findmnt output: {line[:200]!r}") from None
    if "TARGET" not in pairs:
        raise FactUnavailable(f"findmnt output has no TARGET: {line[:200]!r}")
    return pairs


def parse_df(section: Section) -> tuple[int, int]:
    """`df -P -B1 DIR`: header, then `source total used avail capacity mountpoint`."""
    lines = section.output.strip().splitlines()
    if section.rc != 0 or len(lines) < 2:
        raise _failed("df", section)
    cols = lines[-1].split()
    try:
        return int(cols[1]), int(cols[3])
    except (IndexError, ValueError):
        raise FactUnavailable(f"unparsable df output: {lines[-1][:200]!r}") from None


def parse_find_files(section: Section) -> tuple[ArchiveFile, ...]:
    """`find DIR -mindepth 1 -maxdepth 1 -printf '%f|%y|%s|%T@\\n'`."""
    if section.rc != 0:
        raise _failed("listing the archive", section)
    files = []
    for line in section.output.splitlines():
        if not line:
            continue
        parts = line.rsplit("|", 3)
        try:
            files.append(ArchiveFile(parts[0], parts[1], int(parts[2]), float(parts[3])))
        except (IndexError, ValueError):
            raise FactUnavailable(f"unparsable archive listing line: {line[:200]!r}") from None
    return tuple(sorted(files, key=lambda f: f.name))
