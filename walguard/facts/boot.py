"""What starts the PostgreSQL service at boot: the chain of units from the service up to the
default target, each with its unit file state, and Debian's `start.conf` for the cluster.

Why a chain and not the service's own state: on Debian the cluster's unit
(`postgresql@15-main.service`) is linked under /run by the postgresql generator, for
`postgresql.service`, which the default target wants; its own state reads `enabled-runtime`
whether or not anything still pulls `postgresql.service` in. A cluster comes back after a reboot
only when every link from the default target down to it is there and persistent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from walguard.errors import FactUnavailable
from walguard.facts.sections import Section, need

# Unit file states whose links survive a reboot. `enabled-runtime` and `linked-runtime` live
# under /run: gone at the next boot (except a generator's, which is made again at every boot).
PERSISTENT = frozenset({"enabled", "static", "indirect", "alias", "generated", "linked"})
DEBIAN_PARENT = "postgresql.service"
_DEBIAN_INSTANCE = re.compile(r"postgresql@(\d+(?:\.\d+)?)-([A-Za-z0-9_.-]+)\.service")


@dataclass(frozen=True)
class BootUnit:
    id: str
    unit_file_state: str
    pulled_by: tuple[str, ...]  # WantedBy + RequiredBy: the units that start it


@dataclass(frozen=True)
class BootPath:
    default_target: str
    units: dict[str, BootUnit]  # the service and every unit above it, by id
    start_conf: str | None  # Debian's start.conf for the cluster; None where there is none

    def chain(self, service: str) -> tuple[str, ...]:
        """The shortest chain of units that pull `service` in, from the service up to the default
        target (both included); () when nothing links it to the default target."""
        paths: list[tuple[str, ...]] = [(service,)]
        seen = {service}
        while paths:
            path = paths.pop(0)
            if path[-1] == self.default_target:
                return path
            unit = self.units.get(path[-1])
            for parent in unit.pulled_by if unit else ():
                if parent not in seen:
                    seen.add(parent)
                    paths.append((*path, parent))
        return ()

    def generated_by_debian(self, service: str, chain: tuple[str, ...]) -> bool:
        """The cluster's link is the postgresql generator's, made again at every boot: the
        cluster is Debian's, its start.conf says auto, and postgresql.service pulls it in."""
        return self.start_conf == "auto" and chain[1:2] == (DEBIAN_PARENT,)


def start_conf_path(service: str) -> str | None:
    """Debian's start.conf for a cluster unit such as postgresql@15-main.service."""
    m = _DEBIAN_INSTANCE.fullmatch(service)
    return f"/etc/postgresql/{m.group(1)}/{m.group(2)}/start.conf" if m else None


def _blocks(text: str) -> list[dict[str, str]]:
    """`systemctl show` of several units: blocks of Key=Value lines, a blank line between."""
    found: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                found.append(current)
            current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        found.append(current)
    return found


def parse_boot(sections: dict[str, Section]) -> BootPath:
    default = need(sections, "boot_default")
    target = default.output.strip()
    if default.rc != 0 or not target.endswith(".target"):
        raise FactUnavailable(f"systemctl get-default failed (exit {default.rc}): {target!r}")
    shown = need(sections, "boot_units")
    if shown.rc != 0:
        raise FactUnavailable(f"systemctl show of the boot chain failed (exit {shown.rc})")
    units = {}
    for block in _blocks(shown.output):
        if "Id" not in block or "UnitFileState" not in block:
            raise FactUnavailable(f"systemctl show printed a unit without Id or state: {block}")
        pulled = (block.get("WantedBy", "") + " " + block.get("RequiredBy", "")).split()
        units[block["Id"]] = BootUnit(block["Id"], block["UnitFileState"], tuple(pulled))
    if not units:
        raise FactUnavailable("systemctl show printed no unit of the boot chain")
    start_conf = None
    if "start_conf" in sections:
        sec = sections["start_conf"]
        if sec.rc != 0:
            raise FactUnavailable(f"reading start.conf failed (exit {sec.rc}): {sec.output[:200]}")
        words = (ln.split("#", 1)[0].strip() for ln in sec.output.splitlines())
        start_conf = next((w for w in words if w), "")
    return BootPath(target, units, start_conf)
