"""N-name inventories over a few real hosts, for the scale benchmark.

Every database host of the source inventory stands behind many names, round robin: each name is
an inventory host of its own (its own SSH connection, collector run and PostgreSQL query, as a
real host would need), whose `ansible_host` is the real host's address. Strict host-key checking
still holds: OpenSSH checks the key against the address, which the source's known_hosts file
lists. The certificate name clients use stays the real host's (`walguard_tls_name`), so the TLS
controls judge each name as they judge the host it stands for. Probe hosts (`walguard_zone` set:
vantage points, not audited database hosts) are kept as they are.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import yaml

from walguard.inventory.load import InventoryError, VaultOptions, read_inventory


def scaled_inventory(
    source: Path, names: int, out: Path, *, ssh_args: str | None = None
) -> list[str]:
    """Writes an inventory of `names` database host names to `out` (the source's variables and
    probe hosts kept; `ssh_args`, allowed options such as `-o KexAlgorithms=...`, as every
    name's ansible_ssh_common_args) and returns the names, in inventory order."""
    inventory = read_inventory(str(source), VaultOptions((), ()))
    databases = [t for t in inventory.targets if t.policy.zone is None]
    if not databases:
        raise SystemExit(f"bench: {source} has no database host to stand behind the names")
    doc: dict[str, Any] = yaml.safe_load(source.read_text())
    width = len(str(names))
    hosts: dict[str, dict[str, Any]] = {}
    for i in range(names):
        real = databases[i % len(databases)]
        name = f"{real.name}-n{i + 1:0{width}d}"
        hosts[name] = {"ansible_host": real.address, "walguard_tls_name": _tls_name(real)}
        if ssh_args:
            hosts[name]["ansible_ssh_common_args"] = ssh_args
    # Every group that held a database host now holds none; one group holds the names, with the
    # variables the first database host had from its groups (the lab's are one group's).
    groups = doc["all"].get("children", {})
    home = next(g for g in groups.values() if databases[0].name in (g.get("hosts") or {}))
    for group in groups.values():
        for real in databases:
            (group.get("hosts") or {}).pop(real.name, None)
    home["hosts"] = hosts
    out.write_text(
        "# Scale benchmark: names standing in front of the lab's hosts, round robin.\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )
    return list(hosts)


def _tls_name(target: Any) -> str:
    return str(target.policy.tls_name or target.name)


def require_hosts(inventory: Path) -> None:
    """Every database host of the inventory answers on its SSH port, or the benchmark stops
    now: a lab that is down would otherwise be measured as 1,000 connect timeouts."""
    try:
        found = read_inventory(str(inventory), VaultOptions((), ()))
    except InventoryError as exc:
        raise SystemExit(f"bench: {exc}") from None
    down = []
    for target in (t for t in found.targets if t.policy.zone is None):
        try:
            socket.create_connection((target.address, target.port), timeout=3).close()
        except OSError as exc:
            down.append(f"{target.name} ({target.address}: {exc.strerror or exc})")
    if down or not found.targets:
        raise SystemExit(f"bench: not reachable: {', '.join(down) or 'no hosts'}; is the lab up? "
                         "(make lab-up, or walguard lab up)")  # fmt: skip
