"""What PostgreSQL says about itself (pg_settings, pg_stat_archiver, the archive status files,
the current WAL file and timeline) as one typed snapshot, and what --active-probe saw.

The query that reads them and its parser are in walguard.facts.postgres; these types have their
own module so that controls and HostFacts use them without importing the database driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from walguard.errors import FactUnavailable


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
    last_archived_epoch: float | None = None  # when, on the host's clock


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
    system_identifier: int = 0  # 0: not read (an older facts document)

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
