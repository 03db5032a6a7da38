"""The typed, immutable record of one host's facts (HostFacts), with the raw outputs kept as
evidence.

Each part is either parsed facts or the reason it could not be had (FactUnavailable); controls
read parts through accessors that raise, so a missing fact makes a control ERROR, never PASS.
The parts' own types live in their own modules (walguard.facts.archive_dir, .postgres_state,
.selinux, .platform); the ones a control reads are importable from here too, as controls of
your own may import them (README, "Your own controls").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from walguard.errors import FactUnavailable
from walguard.facts.archive_dir import ArchiveDir as ArchiveDir
from walguard.facts.postgres_state import Postgres as Postgres
from walguard.facts.postgres_state import ProbeResult as ProbeResult
from walguard.facts.selinux import SelinuxFacts as SelinuxFacts
from walguard.part import Part as Part

if TYPE_CHECKING:
    from walguard.facts.backups import BaseBackups
    from walguard.facts.drill_result import DrillResult
    from walguard.facts.pgbackrest_backups import PgBackRestInfo
    from walguard.facts.platform import PlatformFacts
    from walguard.facts.wal_window import WalWindow

NO_BACKUP_SOURCE = "cannot verify: the policy names no base backups (walguard_base_backup_dir)"
# The backup tools whose backups walguard does not read yet, by walguard_base_backup_source.
UNREAD_BACKUP_TOOLS = {"barman": "Barman", "wal-g": "WAL-G"}


def unread_backup_source(source: str) -> str:
    """WG-RST-001's ERROR for a backup source walguard cannot read: said, never guessed."""
    tool = UNREAD_BACKUP_TOOLS.get(source, source)
    return (
        f"cannot verify: walguard does not read {tool}'s backups yet "
        f"(walguard_base_backup_source: {source})"
    )


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
    # The validation matrix: service, platform, network, clock, identity (walguard.facts.platform).
    platform: PlatformFacts | None = None
    # How this host answered from each zone's probe host (walguard.facts.network), set by the run.
    zones: Part[Any] = field(default_factory=lambda: Part(error="no zone probes were run"))
    # Base backups, where the policy names their source: pg_basebackup's directories
    # (walguard.facts.backups) or pgBackRest's account of them (walguard.facts.pgbackrest_backups).
    backups: Part[BaseBackups | PgBackRestInfo] = field(
        default_factory=lambda: Part(error=NO_BACKUP_SOURCE)
    )
    # The data-loss window: commits archived and waiting, from the WAL (walguard.facts.wal_window).
    window: Part[WalWindow] = field(default_factory=lambda: Part(error="not collected"))
    # What the restore drill showed (walguard.drill), when --restore-drill asked for one.
    drill: Part[DrillResult] = field(
        default_factory=lambda: Part(error="--restore-drill not given")
    )

    @classmethod
    def unreachable(
        cls,
        host: str,
        address: str,
        reason: str,
        *,
        round_trips: int = 0,
        attempts: tuple[Mapping[str, object], ...] = (),
        account: str | None = None,
    ) -> HostFacts:
        """A host whose facts could not be had: every part carries the one reason; `account`
        (the evidence: what ssh said at each attempt) defaults to the reason."""
        return cls(
            host,
            address,
            False,
            reason,
            Part(error=reason),
            Part(error=reason),
            Part(error=reason),
            round_trips,
            MappingProxyType({"error": account or reason}),
            ssh_attempts=attempts,
        )

    def require_reachable(self) -> None:
        if not self.reachable:
            raise FactUnavailable(self.error or f"{self.host}: unreachable")
