"""Hosts on this machine that nobody answers for: real audits without a lab, every host ERROR."""

from __future__ import annotations

import socket
from pathlib import Path


def closed_port() -> int:
    """A local TCP port nothing listens on (bound once and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def inventory(directory: Path, hosts: list[str], port: int | None = None) -> Path:
    """An inventory of `hosts` at 127.0.0.1 on a closed port (one for all), no retries, with an
    empty known_hosts file of its own."""
    known_hosts = directory / "known_hosts"
    known_hosts.write_text("")
    path = directory / "inventory.yml"
    path.write_text(
        "all:\n  vars:\n    ansible_host: 127.0.0.1\n    walguard_ssh_retries: 0\n"
        f"    walguard_known_hosts_file: {known_hosts}\n"
        f"    ansible_port: {port or closed_port()}\n"
        "  hosts:\n" + "".join(f"    {h}:\n" for h in hosts)
    )
    return path
