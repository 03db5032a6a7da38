"""Where the lab keeps its state and which addresses it uses.

All lab traffic stays on this machine: the hosts, the two probe zones and the bridge live on
10.231.0.0/16, which the lab routes only between its own subnets (no default route anywhere).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from walguard.paths import LAB_INVENTORY, LAYOUT

# The lab runs from a checkout of the repository: its image recipe and scenarios are not
# installed with the package (`walguard lab` says so when run from an installed walguard).
PROJECT_ROOT = LAYOUT.root
RECIPE_DIR = PROJECT_ROOT / "lab" / "image"
SCENARIO_DIR = PROJECT_ROOT / "lab" / "scenarios"
INVENTORY_PATH = LAB_INVENTORY

# Images are cached outside the work tree so that clones and CI runs on the same machine share them.
CACHE_DIR = Path(os.environ.get("WALGUARD_CACHE", "/var/cache/walguard"))
STATE_DIR = Path(os.environ.get("WALGUARD_LAB_STATE", "/var/lib/walguard/lab"))

BRIDGE = "wgbr0"
BRIDGE_ADDR = "10.231.0.1"
LAB_NET = "10.231.0.0/16"
HOST_NET_PREFIX = "10.231.0."
FIRST_HOST_OCTET = 11
MAX_HOSTS = 40

AUDIT_USER = "walguard"
ARCHIVE_DIR = "/pg_archive"
# Where each database host keeps its base backups (taken when it first becomes ready).
BACKUP_DIR = "/pg_backup"
SCRATCH_DIR = "/pg_scratch"  # where --restore-drill restores into (walguard_restore_scratch_dir)
# The restore host: RESTORE_HOST reads RESTORE_SOURCE's archive and backups read-only under
# RESTORE_MOUNT/RESTORE_SOURCE (walguard.lab.restore_exports), and restores its drills.
RESTORE_HOST = "db3"
RESTORE_SOURCE = "db1"
RESTORE_MOUNT = "/restore"
ARCHIVE_SIZE_MIB = 1024


@dataclass(frozen=True)
class Zone:
    """A probe zone: a network namespace on its own subnet, routed to the hosts via this machine."""

    name: str
    netns: str
    veth_outer: str
    outer_addr: str
    inner_addr: str
    subnet: str


ZONES = (
    Zone("zone-a", "wg-zone-a", "wgza0", "10.231.1.1", "10.231.1.2", "10.231.1.0/24"),
    Zone("zone-b", "wg-zone-b", "wgzb0", "10.231.2.1", "10.231.2.2", "10.231.2.0/24"),
)


# The zones' vantage points: one small host per zone (sshd, psql, chrony), booted inside the
# zone's network namespace, so that a connection it makes starts in that zone. probe-a also
# serves the lab's time (NTP) to the database hosts, as a management zone's time source would.
NTP_SERVER = ZONES[0].inner_addr


def host_names(count: int) -> list[str]:
    return [f"db{i}" for i in range(1, count + 1)]


def probe_name(zone: Zone) -> str:
    """zone-a -> probe-a"""
    return "probe-" + zone.name.removeprefix("zone-")


def probe_names() -> list[str]:
    return [probe_name(z) for z in ZONES]


def zone_of(name: str) -> Zone | None:
    """The zone a probe host stands in; None for a database host."""
    return next((z for z in ZONES if probe_name(z) == name), None)


def host_address(name: str) -> str:
    """db1 -> 10.231.0.11, db2 -> 10.231.0.12, ...; probe-a -> zone-a's address"""
    zone = zone_of(name)
    if zone is not None:
        return zone.inner_addr
    if not name.startswith("db") or not name[2:].isdigit():
        raise ValueError(f"not a lab host name: {name!r}")
    return f"{HOST_NET_PREFIX}{FIRST_HOST_OCTET - 1 + int(name[2:])}"
