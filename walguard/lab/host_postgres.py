"""A database host's own PostgreSQL setup, written once into its pristine layer: its address on
the lab bridge, the server's listeners and pg_hba, its TLS certificates from the lab CA, and its
own cluster (its own system identifier, not the image's)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from walguard.lab import settings, tls
from walguard.lab.proc import run
from walguard.lab.rootfs import passwd_ids, write_file

if TYPE_CHECKING:
    from walguard.lab.container import Container


def database_layer(host: Container, root: Path) -> None:
    """A database host's address, PostgreSQL listeners, pg_hba, TLS and its own cluster."""
    write_file(
        root / "etc/systemd/network/10-host0.network",
        "[Match]\nName=host0\n\n[Network]\n"
        f"Address={host.address}/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n\n"
        f"[Route]\nDestination={settings.LAB_NET}\nGateway={settings.BRIDGE_ADDR}\n",
    )
    # PostgreSQL listens on loopback and on the host's own lab address, nowhere else.
    pg_ids = passwd_ids(root, "postgres")
    write_file(
        root / "etc/postgresql/15/main/conf.d/20-walguard-listen.conf",
        f"listen_addresses = 'localhost,{host.address}'\n",
        owner=pg_ids,
    )
    write_file(
        root / "etc/postgresql/15/main/pg_hba.conf",
        (root / "etc/postgresql/15/main/pg_hba.conf").read_text()
        + "# zone-a (application zone) may connect with a password\n"
        + f"host all all {settings.ZONES[0].subnet} scram-sha-256\n",
        mode=0o640,
        owner=pg_ids,
    )
    _tls_layer(host, root, pg_ids)
    # The host's own cluster (its own system identifier), made in its own layer.
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        run(
            ["chroot", str(root), "/bin/sh", "/usr/local/lib/walguard-lab/new-cluster.sh"],
            timeout=300,
        )
    finally:
        run(["umount", str(root / "proc")], check=False)


def _tls_layer(host: Container, root: Path, pg_ids: tuple[int, int]) -> None:
    """Server certificates from the lab CA: the one in use, and the bad ones scenarios use."""
    tls_dir = root / "etc/walguard-lab/tls"
    certs = {
        "server": tls.issue_server(host.name, host.address),
        "wrong-name": tls.issue_server(f"not-{host.name}.invalid", None),
        "expiring": tls.issue_server(host.name, host.address, days=tls.EXPIRING_DAYS),
    }
    for name, issued in certs.items():
        write_file(tls_dir / f"{name}.crt", issued.cert_pem.decode(), 0o644, pg_ids)
        write_file(tls_dir / f"{name}.key", issued.key_pem.decode(), 0o600, pg_ids)
    write_file(
        root / "etc/postgresql/15/main/conf.d/30-walguard-tls.conf",
        "# TLS with a certificate from the lab CA for this host's name and address.\n"
        "ssl = on\n"
        "ssl_cert_file = '/etc/walguard-lab/tls/server.crt'\n"
        "ssl_key_file = '/etc/walguard-lab/tls/server.key'\n",
        owner=pg_ids,
    )
