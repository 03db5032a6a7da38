"""Network: where PostgreSQL listens and who else listens, the host firewall, and whether the
zones that must reach PostgreSQL do and the others are refused (from real vantage points)."""

from __future__ import annotations

from walguard.controls import control, fail
from walguard.errors import FactUnavailable
from walguard.facts.network import BLOCKED, REACHED, TLS_FAILED, UNKNOWN, ZoneAttempt
from walguard.facts.platform import PlatformFacts
from walguard.inventory.load import Target
from walguard.policy.model import Policy

ANY = {"0.0.0.0", "::", "*"}
LOOPBACK = "localhost"


def _expected_addresses(policy: Policy, target: Target) -> set[str]:
    wanted = policy.listen_addresses
    if wanted is None:
        wanted = (LOOPBACK, target.address)
    found: set[str] = set()
    for item in wanted:
        found |= {"127.0.0.1", "::1"} if item == LOOPBACK else {item}
    return found


@control(
    "WG-NET-001",
    "PostgreSQL listens on the policy's addresses and port, and nothing else listens on its port",
    severity="high",
    refs=("BSI APP.4.3", "BSI NET.1.1"),
    reads=("listeners",),
    scenarios=("listen-unexpected-address",),
    rationale="A server listening on every address is reachable from networks nobody meant "
    "to expose it to; another process on its port answers clients in its place.",
    detail="PostgreSQL listens on the policy's addresses and port only (`ss -tulpn`), and nothing "
    "else listens on its port",
)
def test_postgres_listeners(platform: PlatformFacts, policy: Policy, target: Target) -> str:
    port = target.connect.pg_port
    on_port = [li for li in platform.listeners.get() if li.port == port and li.netid == "tcp"]
    others = sorted(
        {p for li in on_port for p in li.processes if p not in ("postgres", "postmaster")}
    )
    if others:
        fail(f"port {port} is also listened on by {', '.join(others)}")
    unowned = [li for li in on_port if not li.processes]
    if unowned:
        fail(f"cannot tell which process listens on {unowned[0].address}:{port} (ss showed none)")
    actual = {li.address for li in on_port}
    if not actual:
        fail(f"PostgreSQL listens on no TCP address on port {port}")
    expected = _expected_addresses(policy, target)
    # An expected loopback address may be absent where the host has no IPv6 (or no IPv4).
    missing = sorted(a for a in expected - actual if a not in ("127.0.0.1", "::1"))
    extra = sorted(actual - expected)
    if extra:
        wild = [a for a in extra if a in ANY]
        what = "every address" if wild else ", ".join(extra)
        fail(
            f"PostgreSQL listens on {what} ({', '.join(extra)}:{port}); policy: {sorted(expected)}"
        )
    if missing:
        fail(f"PostgreSQL does not listen on {', '.join(missing)}:{port} (policy)")
    return f"postgres on {', '.join(sorted(actual))} port {port}"


@control(
    "WG-NET-002",
    "no listening socket outside the policy's allow-list",
    severity="medium",
    refs=("BSI SYS.1.1", "BSI NET.1.1"),
    reads=("listeners",),
    scenarios=("listener-stray",),
    rationale="Every listener is attack surface; one nobody approved is a service nobody "
    "patches or monitors (ss -tulpn, as the operator checks it).",
    detail="no listener outside the policy's allow-list (PROCESS:PORT)",
)
def test_no_unexpected_listeners(platform: PlatformFacts, policy: Policy, target: Target) -> str:
    allowed = {tuple(entry.rsplit(":", 1)) for entry in policy.allowed_listeners}
    port = target.connect.pg_port
    stray = []
    for li in platform.listeners.get():
        names = li.processes or ("?",)
        if li.port == port and set(names) <= {"postgres", "postmaster"}:
            continue
        if not all((n, str(li.port)) in allowed or (n, "*") in allowed for n in names):
            stray.append(f"{'/'.join(names)} on {li.netid} {li.address}:{li.port}")
    if stray:
        fail(f"listener(s) outside the allow-list: {'; '.join(sorted(set(stray)))}")
    return f"{len(platform.listeners.get())} listeners, all allowed"


@control(
    "WG-NET-003",
    "a host firewall (nftables or firewalld) is active and filters incoming traffic",
    severity="high",
    refs=("BSI NET.1.1", "BSI SYS.1.1"),
    remediation="WG-NET-003.sh",
    reads=("firewall_units", "nft_ruleset"),
    scenarios=("firewall-flushed",),
    rationale="The zone segmentation the network relies on is enforced on the host too; a "
    "flushed ruleset lets every zone reach PostgreSQL.",
    detail="nftables or firewalld is active and an input chain drops or rejects",
)
def test_firewall_active(platform: PlatformFacts, policy: Policy) -> str:
    fw = platform.firewall.get()
    if not policy.firewall_required:
        return "the policy does not require a host firewall"
    active = [u for u, state in fw.units.items() if state == "active"]
    if not active:
        fail("neither nftables.service nor firewalld.service is active")
    if not fw.input_chains:
        fail(f"{', '.join(active)} active, but no ruleset filters input (nft list ruleset)")
    if not fw.filters_input:
        fail(f"input chain(s) {', '.join(fw.input_chains)} accept everything (no drop or reject)")
    return f"{', '.join(active)}; input filtered by {', '.join(fw.input_chains)}"


def _zone_line(zone: str, expect: bool, attempt: ZoneAttempt | None) -> str:
    outcome = attempt.outcome if attempt else "no probe host"
    return f"{zone} ({'must reach' if expect else 'must be refused'}): {outcome}"


@control(
    "WG-NET-004",
    "PostgreSQL answers from the zones that must reach it and is refused from the others",
    severity="high",
    refs=("BSI NET.1.1", "DORA Art. 9"),
    scenarios=("firewall-flushed", "zone-b-allowed", "tls-cert-wrong-name"),
    rationale="The validation matrix: critical endpoint checks pass from at least two network "
    "zones. One vantage point proves nothing about segmentation; a refused application zone "
    "is an outage, an open office zone an exposure.",
    detail="from each zone's probe host, a real PostgreSQL connection attempt answers where the "
    "policy says it must (verifying TLS with `sslmode=verify-full` when the policy names a CA) and "
    "is refused elsewhere; fewer than two zones FAILs",
)
def test_zone_reachability(zones: dict[str, ZoneAttempt], policy: Policy) -> str:
    if len(policy.zones) < 2:
        fail(
            f"{len(policy.zones)} zone(s) in the policy (walguard_zones): at least two are "
            "needed to show that PostgreSQL is reachable where it must be and refused elsewhere"
        )
    lines = [_zone_line(z, expect, zones.get(z)) for z, expect in policy.zones]
    unprobed = [z for z, _ in policy.zones if z not in zones]
    if unprobed:
        fail(f"no probe host (walguard_zone) for {', '.join(unprobed)}: " + "; ".join(lines))
    for zone, expect in policy.zones:
        attempt = zones[zone]
        if attempt.outcome == UNKNOWN:
            raise FactUnavailable(f"{zone}: could not tell: {attempt.detail}")
        if expect and attempt.outcome == TLS_FAILED:
            fail(f"{zone} reaches PostgreSQL but TLS verification failed: {attempt.detail}")
        if expect and attempt.outcome not in REACHED:
            fail(f"{zone} must reach PostgreSQL but was {attempt.outcome}: {attempt.detail}")
        if not expect and attempt.outcome not in BLOCKED:
            fail(f"{zone} must be refused but PostgreSQL {attempt.outcome}: {attempt.detail}")
    return "; ".join(lines)
