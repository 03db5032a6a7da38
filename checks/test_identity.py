"""Identity: the clock every timestamp (and recovery_target_time) depends on, the host's name as
clients and the host itself resolve it, and the server certificate clients verify."""

from __future__ import annotations

from walguard.controls import NotApplicable, control, fail
from walguard.errors import FactUnavailable
from walguard.facts.network import tls_name
from walguard.facts.platform import PlatformFacts
from walguard.facts.postgres_state import Postgres
from walguard.facts.tls import judge_certificate, load_ca
from walguard.inventory.load import Target
from walguard.policy.model import Policy

LOOPBACK_PREFIXES = ("127.", "::1")


@control(
    "WG-IDN-001",
    "the clock is NTP-synchronised, with an offset under the policy's threshold",
    severity="high",
    refs=("BSI OPS.1.2.6", "DORA Art. 12"),
    reads=("time_units", "chrony_tracking", "timedatectl", "timesync_status"),
    scenarios=("ntp-off",),
    rationale="Point-in-time recovery targets a time: a host whose clock drifts archives WAL "
    "under timestamps that do not match the incident's. Certificates and Kerberos also fail "
    "on a wrong clock (auth or trust mismatch).",
    detail="NTP-synchronised (chronyd, or systemd-timesyncd), offset under "
    "`walguard_clock_max_offset_ms`",
)
def test_clock_synchronised(platform: PlatformFacts, policy: Policy) -> str:
    clock = platform.clock.get()
    limit = policy.clock_max_offset_ms
    if clock.chrony is not None:
        leap = clock.chrony.get("Leap status", "")
        source = clock.chrony.get("Reference ID", "?")
        if leap.lower().startswith("not synchronised"):
            fail(f"chronyd runs but is not synchronised (Leap status: {leap}, source {source})")
        if source.startswith("7F7F0101"):
            # chronyd's `local` reference: the host serves its own clock, synchronised to nothing.
            fail(f"chronyd is synchronised only to this host's own clock ({source})")
        offset = clock.chrony_offset_ms()
        if offset is None:
            raise FactUnavailable(f"chronyc tracking shows no offset: {clock.chrony}")
        if offset > limit:
            fail(f"clock offset {offset:.1f} ms from {source} exceeds the policy's {limit} ms")
        return f"chronyd synchronised to {source}, offset {offset:.3f} ms (limit {limit} ms)"
    running = [u for u, state in clock.daemons.items() if state == "active"]
    if "systemd-timesyncd.service" in running:
        if not clock.ntp_synchronized:
            fail("systemd-timesyncd runs but the clock is not synchronised (NTPSynchronized=no)")
        if clock.timesync_offset_ms is None:
            raise FactUnavailable("systemd-timesyncd shows no offset (timedatectl timesync-status)")
        if abs(clock.timesync_offset_ms) > limit:
            fail(f"clock offset {clock.timesync_offset_ms:.1f} ms exceeds the policy's {limit} ms")
        return f"systemd-timesyncd synchronised, offset {clock.timesync_offset_ms:.3f} ms"
    if running:
        raise FactUnavailable(f"cannot read the offset of {', '.join(running)}")
    fail(f"no NTP client is running (chronyd: {clock.chrony_error or 'not answering'})")


@control(
    "WG-IDN-002",
    "the host's name resolves to its own address and back, on the host",
    severity="medium",
    refs=("BSI APP.4.3", "BSI NET.1.1"),
    reads=("hostname", "host_addresses", "identity"),
    scenarios=("hosts-wrong-address",),
    rationale="Replication, backup tools and TLS name checks use the host's name; a name that "
    "resolves elsewhere (a stale /etc/hosts entry) sends them to the wrong host.",
    detail="the host's name resolves, on the host, to one of its own addresses and back",
)
def test_name_resolves_consistently(platform: PlatformFacts) -> str:
    ident = platform.identity.get()
    if not ident.forward:
        fail(f"the host's name {ident.name!r} does not resolve on the host")
    own = [a for a in ident.forward if a in ident.addresses and not a.startswith(LOOPBACK_PREFIXES)]
    foreign = [a for a in ident.forward if a not in ident.addresses]
    if foreign:
        fail(
            f"{ident.name} resolves to {', '.join(foreign)}, not an address of this host "
            f"(its addresses: {', '.join(ident.addresses)})"
        )
    if not own:
        fail(f"{ident.name} resolves only to loopback ({', '.join(ident.forward)})")
    names = {ident.name, ident.fqdn, ident.name.split(".")[0]} - {""}
    for address in own:
        back = ident.reverse.get(address, ())
        back_names = {n.rstrip(".") for n in back} | {n.split(".")[0] for n in back}
        if not names & back_names:
            shown = ", ".join(back) or "nothing"
            fail(f"{address} resolves back to {shown}, not to {ident.name}")
    return f"{ident.name} -> {', '.join(own)} -> {ident.name}"


@control(
    "WG-IDN-003",
    "the server certificate chains to the policy's CA, matches the name clients use, "
    "and does not expire soon",
    severity="high",
    refs=("BSI APP.4.3", "BSI CON.1"),
    reads=("tls_cert",),
    scenarios=("tls-cert-wrong-name", "tls-cert-expiring"),
    rationale="Clients that verify (sslmode=verify-full) refuse a certificate from another CA, "
    "for another name, or expired: a certificate expiring unnoticed is an outage on a date.",
    detail="with TLS on: the server certificate chains to the policy's CA, matches the name "
    "clients use, and is valid for at least `walguard_tls_min_days` more days",
)
def test_server_certificate(
    platform: PlatformFacts, pg: Postgres, policy: Policy, target: Target
) -> str:
    pem = platform.tls_cert.get()
    ssl_on = pg.setting("ssl").setting == "on"
    if not pem or not ssl_on:
        if policy.tls_required:
            fail("TLS is off (ssl = off) and the policy requires it")
        raise NotApplicable("TLS is off and the policy does not require it (walguard_tls_required)")
    if not policy.tls_ca_file:
        raise FactUnavailable(
            "cannot verify the server certificate: the policy names no CA (walguard_tls_ca_file)"
        )
    verdict = judge_certificate(
        pem, load_ca(policy.tls_ca_file), tls_name(target), policy.tls_min_days
    )
    if not verdict.ok:
        fail(verdict.message)
    return verdict.message
