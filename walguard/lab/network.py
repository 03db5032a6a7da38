"""The lab network: a bridge for the hosts and two probe zones (network namespaces), routed only
between the lab's own subnets. Nothing here routes or NATs anywhere else."""

from __future__ import annotations

from pathlib import Path

from walguard.lab import settings
from walguard.lab.proc import run

FORWARD_TABLE = "walguard_lab"
_FORWARD_RULES = f"""
table inet {FORWARD_TABLE} {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ip saddr {settings.LAB_NET} ip daddr {settings.LAB_NET} accept
    }}
}}
"""
_IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


def up() -> None:
    """Create what is missing; leave what exists (so a second `up` changes nothing)."""
    if not _link_exists(settings.BRIDGE):
        run(["ip", "link", "add", settings.BRIDGE, "type", "bridge"])
        run(["ip", "addr", "add", f"{settings.BRIDGE_ADDR}/24", "dev", settings.BRIDGE])
    run(["ip", "link", "set", settings.BRIDGE, "up"])
    # Forward between lab subnets only: the zones reach the hosts through this machine.
    if run(["nft", "list", "table", "inet", FORWARD_TABLE], check=False).returncode != 0:
        run(["nft", "-f", "-"], input_text=_FORWARD_RULES)
    saved = settings.STATE_DIR / "ip_forward.saved"
    if not saved.exists():
        saved.write_text(_IP_FORWARD.read_text())
    _IP_FORWARD.write_text("1\n")
    for zone in settings.ZONES:
        if not _netns_exists(zone.netns):
            run(["ip", "netns", "add", zone.netns])
        if not _link_exists(zone.veth_outer):
            run(
                [
                    "ip",
                    "link",
                    "add",
                    zone.veth_outer,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    zone.netns,
                ]
            )
            run(["ip", "addr", "add", f"{zone.outer_addr}/24", "dev", zone.veth_outer])
            ns = ["ip", "-n", zone.netns]
            run([*ns, "addr", "add", f"{zone.inner_addr}/24", "dev", "eth0"])
            run([*ns, "link", "set", "lo", "up"])
            run([*ns, "link", "set", "eth0", "up"])
            run(["ip", "link", "set", zone.veth_outer, "up"])
            run([*ns, "route", "add", settings.LAB_NET, "via", zone.outer_addr])


def down() -> None:
    for zone in settings.ZONES:
        # The veth first (its peer in the namespace goes with it), then the namespace: deleting
        # the namespace first removes the outer end asynchronously, racing a later `link del`.
        if _link_exists(zone.veth_outer):
            run(["ip", "link", "del", zone.veth_outer], check=False)
        if _netns_exists(zone.netns):
            run(["ip", "netns", "del", zone.netns])
    if _link_exists(settings.BRIDGE):
        run(["ip", "link", "del", settings.BRIDGE])
    run(["nft", "delete", "table", "inet", FORWARD_TABLE], check=False)
    saved = settings.STATE_DIR / "ip_forward.saved"
    if saved.exists():
        _IP_FORWARD.write_text(saved.read_text())
        saved.unlink()
