"""The archive directory's facts: what the collector saw of the policy's archive directory (stat,
its filesystem and every mount, df, the listing, the newest segments' headers, the timeline
history files, the archived files' owners), as one typed snapshot, and its parsers.

The parsers raise FactUnavailable on required output they cannot read, so the archive's
controls ERROR, never PASS, on anything odd (a missing directory is a fact: exists=False).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from walguard.errors import FactUnavailable
from walguard.facts.archive_ownership import Ownership, parse_ownership
from walguard.facts.sections import Section, need


@dataclass(frozen=True)
class ArchiveFile:
    name: str
    kind: str  # find's %y: f file, d directory, l symlink
    size: int
    mtime: float


@dataclass(frozen=True)
class ArchivedBefore:
    archived_count: int
    last_archived_wal: str | None


@dataclass(frozen=True)
class Mount:
    """One line of `findmnt -P -o TARGET,SOURCE,FSTYPE,OPTIONS,MAJ:MIN,FSROOT`."""

    target: str
    source: str = ""
    fstype: str = ""
    options: tuple[str, ...] = ()
    device: str = ""  # MAJ:MIN
    fsroot: str = "/"  # not "/" for a bind mount of a directory

    @property
    def read_only(self) -> bool:
        return "ro" in self.options


@dataclass(frozen=True)
class SegmentHeader:
    """The WAL long page header at the start of an archived segment (first 40 bytes)."""

    name: str
    magic: int
    info: int
    timeline: int
    page_address: int
    system_identifier: int
    segment_size: int
    block_size: int

    LONG_HEADER = 0x0002  # XLP_LONG_HEADER in xlp_info


@dataclass(frozen=True)
class ArchiveDir:
    path: str  # as the policy names it
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
    real_path: str = ""  # where a symlinked path leads; every other fact is of this directory
    is_symlink: bool = False
    mount: Mount | None = None  # the filesystem the real directory is on
    root_mount: Mount | None = None  # the filesystem of /
    mounts: tuple[Mount, ...] = ()  # every mount, to find PGDATA's
    headers: tuple[SegmentHeader, ...] = ()  # the newest segments' headers
    histories: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    check: tuple[int, str] | None = None  # the policy's archive check: exit status, output
    listed_at: float | None = None  # epoch seconds just before the directory was listed
    # pg_stat_archiver as read just before the listing (None: not read): what the listing must
    # hold, whatever is archived while the host is read.
    archived_before: ArchivedBefore | None = None
    # Who owns each archived file, its mode, and who the restore runs as; a string says why it
    # is not known (WG-ACT-008 is then ERROR).
    ownership: Ownership | str = "not collected"

    @property
    def where(self) -> str:
        """The path for messages: a symlink says where it leads."""
        return f"{self.path} (a symlink to {self.real_path})" if self.is_symlink else self.path

    @property
    def is_dedicated_mount(self) -> bool:
        real = (self.real_path or self.path).rstrip("/") or "/"
        return self.mount_target == real

    def mount_of(self, path: str) -> Mount | None:
        """The mount a path lives on: the longest mount point that is a prefix of it."""
        best: Mount | None = None
        for m in self.mounts:
            prefix = m.target.rstrip("/") + "/"
            if (path == m.target or path.startswith(prefix) or m.target == "/") and (
                best is None or len(m.target) > len(best.target)
            ):
                best = m
        return best


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
    real = need(dict(sections), "archive_realpath").output.strip() or path
    lstat = need(dict(sections), "archive_lstat")
    root = parse_findmnt_pairs(need(dict(sections), "root_mount"))
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
        real_path=real,
        is_symlink=lstat.rc == 0 and lstat.output.strip() == "symbolic link",
        mount=_mount(mount),
        root_mount=_mount(root),
        mounts=parse_mounts(need(dict(sections), "mounts")),
        headers=parse_headers(need(dict(sections), "segment_headers")),
        histories=MappingProxyType(parse_histories(need(dict(sections), "history_files"))),
        check=_check(sections.get("archive_check")),
        listed_at=_epoch(sections.get("date")),
        archived_before=_archived_before(sections.get("archiver_before")),
        ownership=_ownership(sections),
    )


def _ownership(sections: Mapping[str, Section]) -> Ownership | str:
    try:
        return parse_ownership(dict(sections))
    except FactUnavailable as exc:
        return str(exc)


def _archived_before(section: Section | None) -> ArchivedBefore | None:
    """`archived_count|last_archived_wal` from the collector's psql run; None when psql could
    not say (the controls then judge as if it had not been asked)."""
    if section is None or section.rc != 0:
        return None
    count, sep, wal = section.output.strip().partition("|")
    if not sep or not count.isdigit():
        return None
    return ArchivedBefore(int(count), wal or None)


def _epoch(section: Section | None) -> float | None:
    if section is None or section.rc != 0:
        return None
    try:
        return float(section.output.strip())
    except ValueError:
        return None


def _check(section: Section | None) -> tuple[int, str] | None:
    return None if section is None else (section.rc, section.output.strip())


def _mount(pairs: Mapping[str, str]) -> Mount:
    return Mount(
        target=pairs.get("TARGET", ""),
        source=pairs.get("SOURCE", ""),
        fstype=pairs.get("FSTYPE", ""),
        options=tuple(o for o in pairs.get("OPTIONS", "").split(",") if o),
        device=pairs.get("MAJ:MIN", ""),
        fsroot=pairs.get("FSROOT", "/") or "/",
    )


def parse_mounts(section: Section) -> tuple[Mount, ...]:
    """`findmnt -l -P`: one mount a line."""
    if section.rc != 0:
        raise _failed("findmnt (all mounts)", section)
    mounts = []
    for line in section.output.splitlines():
        if line.strip():
            mounts.append(_mount(parse_findmnt_pairs(Section("mounts", line, 0))))
    if not mounts:
        raise FactUnavailable("findmnt listed no mounts")
    return tuple(mounts)


_HEADER = struct.Struct("<HHIQI4xQII")  # XLogLongPageHeaderData, little-endian


def parse_headers(section: Section) -> tuple[SegmentHeader, ...]:
    """`NAME|hex of the first 40 bytes` a line; a file shorter than a header is kept with what
    it has (its short hex makes it unparsable: the control names it)."""
    if section.rc != 0:
        raise _failed("reading segment headers", section)
    headers = []
    for line in section.output.splitlines():
        if not line.strip():
            continue
        name, sep, hexed = line.partition("|")
        if not sep:
            raise FactUnavailable(f"unparsable segment header line: {line[:120]!r}")
        try:
            raw = bytes.fromhex(hexed.strip())
        except ValueError:
            raise FactUnavailable(f"unparsable segment header of {name}: {hexed[:120]!r}") from None
        if len(raw) < _HEADER.size:
            headers.append(SegmentHeader(name, 0, 0, 0, 0, 0, len(raw), 0))
            continue
        magic, info, tli, addr, _rem, sysid, segsize, blcksz = _HEADER.unpack(raw[: _HEADER.size])
        headers.append(SegmentHeader(name, magic, info, tli, addr, sysid, segsize, blcksz))
    return tuple(headers)


def parse_histories(section: Section) -> dict[str, str]:
    """`== NAME` then the file's text, for each .history file in the archive."""
    if section.rc != 0:
        raise _failed("reading timeline history files", section)
    found: dict[str, list[str]] = {}
    current: str | None = None
    for line in section.output.splitlines():
        if line.startswith("== ") and line.endswith(".history"):
            current = line[3:]
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return {name: "\n".join(lines).strip() + "\n" for name, lines in found.items()}


# findmnt -P writes KEY="value" pairs and escapes every byte that could end or change a quoted
# value (", \\, `, $, control and non-printable bytes) as \\xNN (util-linux's fputs_quoted), so
# a value never holds a quote: a pattern reads a line exactly as a shell would, at a fraction of
# shlex's cost (it read one character a call: 300 hosts' mount tables took seconds of CPU).
_FINDMNT_PAIR = re.compile(r'([^\s="]+)="([^"]*)"(?:\s+|$)')


def parse_findmnt_pairs(section: Section) -> dict[str, str]:
    """`findmnt -n -P -o TARGET,SOURCE,FSTYPE,OPTIONS` prints KEY="value" pairs, shell-quoted."""
    if section.rc != 0 or not section.output.strip():
        raise _failed("findmnt", section)
    line = section.output.strip().splitlines()[0]
    pairs = {}
    at = 0
    while at < len(line):
        match = _FINDMNT_PAIR.match(line, at)
        if match is None:
            raise FactUnavailable(f"unparsable findmnt output: {line[:200]!r}")
        pairs[match[1]] = match[2]
        at = match.end()
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
