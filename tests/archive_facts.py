"""Archive and PostgreSQL facts as a healthy primary has them, for tests of the controls that
judge them (the archive controls, WG-RST-001): each test changes what its case is about."""

from __future__ import annotations

import struct
from types import MappingProxyType
from typing import Any

from walguard.archive.walnames import segment_name
from walguard.facts.archive_dir import ArchiveDir, ArchiveFile, Mount
from walguard.facts.postgres_state import Archiver, Postgres, Setting

SEG = 16 * 1024 * 1024
SYSID = 7312345678901234567


def header_hex(name: str, *, sysid: int = SYSID, size: int = SEG, info: int = 0x0002) -> str:
    tli = int(name[:8], 16)
    number = int(name[8:16], 16) * (0x100000000 // SEG) + int(name[16:24], 16)
    raw = struct.pack("<HHIQI4xQII", 0xD110, info, tli, number * SEG, 0, sysid, size, 8192)
    return raw.hex()


def names(tli: int, numbers: range | list[int]) -> list[str]:
    return [segment_name(tli, n, SEG) for n in numbers]


def pg(**changes: Any) -> Postgres:
    settings = {
        "archive_mode": Setting("archive_mode", "on", False, "configuration file"),
        "archive_command": Setting(
            "archive_command",
            "if [ -f /pg_archive/%f ]; then cmp -s %p /pg_archive/%f; "
            "else cp %p /pg_archive/%f; fi",
            False,
            "configuration file",
        ),
        "data_directory": Setting("data_directory", "/var/lib/postgresql/15/main", False, "x"),
    }
    base: dict[str, Any] = dict(
        version="15.8",
        in_recovery=False,
        settings=MappingProxyType(settings),
        archiver=Archiver(5, names(1, [5])[0], 10.0, 0, None, None, "t", None),
        status_files=(),
        current_walfile=names(1, [6])[0],
        timeline=1,
        segment_size=SEG,
        system_identifier=SYSID,
    )
    base.update(changes)
    return Postgres(**base)


ROOT = Mount("/", "/dev/sda1", "xfs", ("rw",), "8:1")
VOL = Mount("/pg_archive", "/dev/mapper/vg-arch", "xfs", ("rw",), "253:3")
MOUNTS = (ROOT, VOL)


def archive(segments: list[str], **changes: Any) -> ArchiveDir:
    base: dict[str, Any] = dict(
        path="/pg_archive",
        exists=True,
        owner="postgres",
        group="postgres",
        mode=0o750,
        kind="directory",
        mount_target="/pg_archive",
        mount_source=VOL.source,
        fstype="xfs",
        size_bytes=10**10,
        avail_bytes=10**9,
        files=tuple(ArchiveFile(n, "f", SEG, 0.0) for n in segments),
        real_path="/pg_archive",
        mount=VOL,
        root_mount=ROOT,
        mounts=MOUNTS,
        headers=(),
    )
    base.update(changes)
    return ArchiveDir(**base)
