"""The lab's generated inventory (Ansible-style YAML) and its known_hosts file."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from walguard.lab import selinux_guest, settings, tls
from walguard.lab.hosts import Host
from walguard.lab.labhost import known_hosts_path, lab_key


def write_known_hosts(hosts: list[Host]) -> Path:
    """Record each host's key under its name and address, so strict checking can be used."""
    lines = [line for host in hosts for line in host.known_hosts_lines()]
    if selinux_guest.running():
        lines += selinux_guest.GUEST.known_hosts_lines()
    path = known_hosts_path()
    _replace(path, "".join(lines))
    return path


def _replace(path: Path, text: str) -> None:
    """Write `path` whole, by a rename: an audit reading it meanwhile (another lab command's
    write, a test beside it) sees the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _restore_vars(name: str, hosts: list[Host]) -> dict[str, str]:
    """The restore source drills on the restore host, which reads its archive and backups
    read-only (walguard.lab.restore_exports), when both are up."""
    names = {h.name for h in hosts}
    if name != settings.RESTORE_SOURCE or settings.RESTORE_HOST not in names:
        return {}
    exported = f"{settings.RESTORE_MOUNT}/{name}"
    return {
        "walguard_restore_host": settings.RESTORE_HOST,
        "walguard_restore_archive_dir": f"{exported}{settings.ARCHIVE_DIR}",
        "walguard_restore_backup_dir": f"{exported}{settings.BACKUP_DIR}",
    }


def write_inventory(
    hosts: list[Host], path: Path = settings.INVENTORY_PATH, *, guest: bool | None = None
) -> Path:
    """The inventory of `hosts` at `path`, with the SELinux guest when `guest` (by default:
    when it runs)."""
    inventory: dict[str, Any] = {
        "all": {
            "vars": {
                "ansible_user": settings.AUDIT_USER,
                "ansible_port": 22,
                "ansible_ssh_private_key_file": str(lab_key()),
                "ansible_become": True,
                "walguard_known_hosts_file": str(known_hosts_path()),
                # zone-a is the application zone (must reach PostgreSQL), zone-b must be refused.
                "walguard_zones": {
                    z.name: {"expect_postgres": z.name == "zone-a"} for z in settings.ZONES
                },
                "walguard_tls_ca_file": str(tls.ensure_ca()),
                # sshd logs a TCP check that closes without a handshake (the lab's readiness
                # probe, a load balancer's health check) as an error: known noise.
                "walguard_journal_noise": [r"sshd\[\d+\]: error: kex_exchange_identification: "],
            },
            "children": {
                "lab": {
                    "hosts": {
                        h.name: {"ansible_host": h.address, **_restore_vars(h.name, hosts)}
                        for h in hosts
                        if not h.is_probe
                    },
                    "vars": {
                        "walguard_postgres_service": "postgresql@15-main.service",
                        # nspawn containers share the machine's kernel: no SELinux of their own.
                        "walguard_selinux_required": False,
                        "walguard_base_backup_dir": settings.BACKUP_DIR,
                        "walguard_restore_scratch_dir": settings.SCRATCH_DIR,
                    },
                },
                # The zones' vantage points: reached over SSH like any host; from each, walguard
                # tries a real PostgreSQL connection to every database host.
                "probes": {
                    "hosts": {
                        h.name: {"ansible_host": h.address, "walguard_zone": h.zone.name}
                        for h in hosts
                        if h.zone is not None
                    },
                },
            },
        }
    }
    if selinux_guest.running() if guest is None else guest:
        # The SELinux guest (QEMU) sits on the lab bridge like the nspawn hosts, and is audited
        # like them (zones, firewall, clock, TLS); it differs in its kernel, which enforces.
        inventory["all"]["children"]["lab_selinux"] = {
            "hosts": {
                selinux_guest.NAME: {
                    "ansible_host": selinux_guest.ADDRESS,
                    "walguard_postgres_service": selinux_guest.POSTGRES_SERVICE,
                    "walguard_selinux_required": True,
                    # Debian's reference policy is called "default" (RHEL's: targeted).
                    "walguard_selinux_type": "default",
                    # Where the guest's base backups go once archiving works (none in the seed).
                    "walguard_base_backup_dir": settings.BACKUP_DIR,
                }
            }
        }
    header = (
        "# Generated by `walguard lab up`: the local lab hosts. Do not edit; it is rewritten.\n"
        "# Hosts are systemd-nspawn containers on the lab bridge; keys and known_hosts live in\n"
        f"# {settings.STATE_DIR}.\n"
    )
    _replace(path, header + yaml.safe_dump(inventory, sort_keys=False))
    return path


def listed_hosts(path: Path) -> set[str]:
    """The database hosts the lab's inventory at `path` lists (none when there is none)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return set()
    return set(doc["all"]["children"]["lab"]["hosts"])
