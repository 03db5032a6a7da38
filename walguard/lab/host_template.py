"""A container host's pristine layer (template/), written once through a temporary overlay over
the image: its name, machine id and /etc/hosts, its SSH host key and the audit user's login key,
then a database host's PostgreSQL setup (walguard.lab.host_postgres) or a probe host's chrony.
A reset boots again from this layer, so nothing here is rebuilt."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from walguard.lab import settings
from walguard.lab.host_mounts import mount_overlay
from walguard.lab.host_postgres import database_layer
from walguard.lab.labhost import keygen, lab_key
from walguard.lab.proc import run
from walguard.lab.rootfs import passwd_ids, write_file

if TYPE_CHECKING:
    from walguard.lab.container import Container


def make_template(host: Container, image: Path) -> None:
    """Write the host's own files through a temporary overlay, then keep its upper layer."""
    template = host.dir / "template"
    if (template / ".walguard-complete").exists():
        return
    for sub in ("template", "upper", "work", "merged"):
        shutil.rmtree(host.dir / sub, ignore_errors=True)
    for sub in ("template", "merged"):
        (host.dir / sub).mkdir(parents=True)
    mount_overlay(host, image, upper=template)
    root = host.merged
    try:
        write_file(root / "etc/hostname", f"{host.name}\n")
        # Each host its own machine id (the image's would be shared by every host).
        write_file(root / "etc/machine-id", f"{secrets.token_hex(16)}\n", mode=0o444)
        write_file(root / "etc/hosts", f"127.0.0.1 localhost\n{host.address} {host.name}\n")
        _write_ssh_keys(host, root)
        if host.is_probe:
            _probe_layer(root)
        else:
            _time_client(root)
            database_layer(host, root)
    finally:
        run(["umount", str(root)])
    (template / ".walguard-complete").write_text("")


def _write_ssh_keys(host: Container, root: Path) -> None:
    """The host's own SSH host key (recorded for known_hosts) and the audit user's login key."""
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "key"
        keygen(key, f"root@{host.name}")
        write_file(root / "etc/ssh/ssh_host_ed25519_key", key.read_text(), mode=0o600)
        pub = Path(f"{key}.pub").read_text()
        write_file(root / "etc/ssh/ssh_host_ed25519_key.pub", pub)
    (host.dir / "host_key.pub").write_text(pub)
    uid_gid = passwd_ids(root, settings.AUDIT_USER)
    audit_pub = Path(f"{lab_key()}.pub").read_text()
    write_file(root / f"home/{settings.AUDIT_USER}/.ssh/authorized_keys", audit_pub, 0o600, uid_gid)


def _time_client(root: Path) -> None:
    """A database host takes its time from probe-a, polling fast: chronyd then counts as
    synchronised half a second after boot instead of four (iburst's four requests 2 s apart),
    and every lab reset waits for that (hosts.wait_ready)."""
    write_file(
        root / "etc/chrony/chrony.conf",
        "# Lab database hosts: time from probe-a, the management zone's NTP server.\n"
        f"server {settings.host_address('probe-a')} iburst minpoll -2 maxpoll 4\n"
        "driftfile /var/lib/chrony/chrony.drift\n"
        "makestep 1 3\n",
    )


def _probe_layer(root: Path) -> None:
    """A probe host runs no cluster and has no host0; it serves time to the lab (probe-a)."""
    for unit in (
        "postgresql.service",
        "postgresql@15-main.service",
        "systemd-networkd-wait-online.service",
    ):
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    write_file(
        root / "etc/chrony/chrony.conf",
        "# Lab probe host: serves its (the machine's) clock to the lab hosts.\n"
        "local stratum 8\n"
        f"allow {settings.LAB_NET}\n"
        "driftfile /var/lib/chrony/chrony.drift\n",
    )
