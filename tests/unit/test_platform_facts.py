"""The validation matrix's parsers, on a lab host's real collector output (captured with
tests/unit/data/capture.py-style collection from db1) and on real outputs of broken hosts."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from walguard.facts.network import (
    ANSWERED,
    REFUSED,
    TIMEOUT,
    TLS_FAILED,
    UNKNOWN,
    UNREACHABLE,
    classify,
)
from walguard.facts.platform import parse_platform, split_address
from walguard.facts.sections import Section, split_sections
from walguard.history.journal_baseline import new_errors, normalise

DATA = Path(__file__).parent / "data" / "platform"


def pristine() -> dict[str, Section]:
    text = (DATA / "db1-pristine.txt").read_text()
    token = re.match(r"(@@WG-[0-9a-f]+@@) BEGIN", text)
    assert token
    return split_sections(text, token.group(1))


def with_section(name: str, output: str, rc: int = 0) -> dict[str, Section]:
    sections = pristine()
    sections[name] = Section(name, output, rc)
    return sections


def test_pristine_host_parses_completely() -> None:
    p = parse_platform(pristine())
    unit = p.unit.get()
    assert (unit.id, unit.active_state, unit.unit_file_state) == (
        "postgresql@15-main.service",
        "active",
        "enabled-runtime",
    )
    assert not unit.need_daemon_reload and unit.main_pid > 0
    assert p.exe.get() == "/usr/lib/postgresql/15/bin/postgres"
    pkg = p.package.get()
    assert (pkg.name, pkg.manager) == ("postgresql-15", "dpkg") and pkg.status.startswith("ii")
    assert pkg.version.startswith("15.")
    assert p.failed_units.get() == ()
    assert len(p.journal.get()) == 1 and "kex_exchange_identification" in p.journal.get()[0]
    listeners = {(li.address, li.port, li.processes) for li in p.listeners.get()}
    assert ("10.231.0.11", 5432, ("postgres",)) in listeners
    assert ("::", 22, ("sshd",)) in listeners and ("127.0.0.1", 323, ("chronyd",)) in listeners
    fw = p.firewall.get()
    assert fw.units["nftables.service"] == "active" and fw.filters_input
    assert fw.input_chains == ("inet walguard input",)
    clock = p.clock.get()
    assert clock.chrony is not None and clock.chrony["Leap status"] == "Normal"
    offset = clock.chrony_offset_ms()
    assert offset is not None and offset < 1
    ident = p.identity.get()
    assert (ident.name, ident.forward, ident.reverse) == (
        "db1",
        ("10.231.0.11",),
        {"10.231.0.11": ("db1",)},
    )
    assert "10.231.0.11" in ident.addresses
    cfg = p.config.get()
    assert cfg.load_time > 1.7e9 and len(cfg.file_mtimes) == 6
    assert all(not r.error for r in cfg.file_settings)
    # The packaged ssl lines are overridden by the lab's conf.d file: not applied, no error.
    assert [r.name for r in cfg.file_settings if not r.applied][:1] == ["ssl"]
    cert = p.tls_cert.get()
    assert cert.startswith("-----BEGIN CERTIFICATE-----")


def test_each_missing_section_errors_only_its_own_fact() -> None:
    sections = pristine()
    del sections["listeners"]
    p = parse_platform(sections)
    assert p.listeners.error and "listeners" in p.listeners.error
    assert p.unit.error is None and p.firewall.error is None
    with pytest.raises(Exception, match="listeners"):
        p.listeners.get()


# Real outputs from broken lab hosts (the scenarios of the same names).
def test_disabled_unit_and_pending_daemon_reload() -> None:
    show = (
        "MainPID=55\nId=postgresql@15-main.service\nLoadState=loaded\nActiveState=active\n"
        "SubState=running\nFragmentPath=/lib/systemd/system/postgresql@.service\n"
        "UnitFileState=disabled\nNeedDaemonReload=yes\n"
    )
    unit = parse_platform(with_section("unit", show)).unit.get()
    assert unit.unit_file_state == "disabled" and unit.need_daemon_reload


def test_half_configured_package() -> None:
    line = "postgresql-15|15.18-0+deb12u1|iF |dpkg\n"
    pkg = parse_platform(with_section("postgres_package", line)).package.get()
    assert pkg.status == "iF "


def test_stray_listener_and_ss_address_forms() -> None:
    line = 'tcp LISTEN 0 5 10.231.0.13:6543 0.0.0.0:* users:(("perl",pid=118,fd=3))\n'
    [li] = parse_platform(with_section("listeners", line)).listeners.get()
    assert (li.address, li.port, li.processes) == ("10.231.0.13", 6543, ("perl",))
    assert split_address("[::]:22") == ("::", 22)
    assert split_address("127.0.0.53%lo:53") == ("127.0.0.53", 53)
    assert split_address("*:323") == ("*", 323)


def test_flushed_firewall_and_no_nft() -> None:
    fw = parse_platform(with_section("nft_ruleset", "")).firewall.get()
    assert fw.units["nftables.service"] == "active"
    assert fw.input_chains == () and not fw.filters_input
    missing = parse_platform(with_section("nft_ruleset", "sh: nft: not found", rc=127))
    assert missing.firewall.get().tables == ()
    denied = parse_platform(with_section("nft_ruleset", "Operation not permitted", rc=1))
    assert denied.firewall.error and "nft list ruleset failed" in denied.firewall.error


def test_chrony_not_running() -> None:
    clock = parse_platform(
        with_section("chrony_tracking", "506 Cannot talk to daemon", rc=1)
    ).clock.get()
    assert clock.chrony is None and clock.chrony_error == "506 Cannot talk to daemon"


def test_wrong_hosts_entry() -> None:
    out = "name db3\nfqdn db3\nforward 10.231.0.99\nreverse 10.231.0.99     db3\n"
    ident = parse_platform(with_section("identity", out)).identity.get()
    assert ident.forward == ("10.231.0.99",) and ident.reverse == {"10.231.0.99": ("db3",)}


def test_ssl_off() -> None:
    assert parse_platform(with_section("tls_cert", "ssl off")).tls_cert.get() == ""


def test_journal_normalisation_ignores_pids_times_and_ports() -> None:
    a = "2026-11-26T01:40:58+0000 db1 sshd[80]: error: Connection closed by 10.0.0.1 port 56108"
    b = "2026-11-27T02:00:01+0000 db1 sshd[9231]: error: Connection closed by 10.0.0.1 port 40022"
    assert normalise(a) == normalise(b)
    c = "2026-11-27T02:00:01+0000 db1 walguard-lab[77]: simulated I/O error on /dev/sdb"
    assert new_errors([b, c], [a], []) == [c]
    assert new_errors([b, c], [a], [r"simulated I/O"]) == []
    assert new_errors([a], None, []) == [a]


@pytest.mark.parametrize(
    ("rc", "message", "outcome"),
    [
        (2, 'connection to server at "10.231.0.11", port 5432 failed: fe_sendauth: no password '
            "supplied", ANSWERED),
        (2, 'connection to server at "10.231.0.11", port 5432 failed: Connection refused Is the '
            "server running on that host and accepting TCP/IP connections?", REFUSED),
        (2, 'connection to server at "10.231.0.13", port 5432 failed: server certificate for '
            '"not-db3.invalid" does not match host name "db3"', TLS_FAILED),
        (2, 'connection to server at "10.231.0.13", port 5432 failed: FATAL: no pg_hba.conf entry '
            'for host "10.231.2.2", user "walguard_zone_probe"', ANSWERED),
        (2, "timeout expired", TIMEOUT),
        (2, "could not connect: No route to host", UNREACHABLE),
        (124, "", UNKNOWN),
    ],
)  # fmt: skip
def test_zone_attempts_are_classified_from_psql(rc: int, message: str, outcome: str) -> None:
    assert classify(rc, message) == outcome


def test_certificates_chain_name_and_expiry(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from walguard.facts.tls import judge_certificate

    now = dt.datetime.now(dt.UTC)

    def cert(
        name: str,
        issuer_key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        ca: bool,
        days: int,
        san: str | None,
    ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        b = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer if not ca else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            b = b.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            signed = b.sign(key, hashes.SHA256())
        else:
            b = b.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(san or name)]), critical=False
            )
            signed = b.sign(issuer_key, hashes.SHA256())
        return signed, key

    ca, ca_key = cert(
        "test CA", ec.generate_private_key(ec.SECP256R1()), x509.Name([]), True, 3650, None
    )
    other_ca, other_key = cert(
        "other CA", ec.generate_private_key(ec.SECP256R1()), x509.Name([]), True, 3650, None
    )

    def pem(c: x509.Certificate) -> str:
        return c.public_bytes(serialization.Encoding.PEM).decode()

    good, _ = cert("db1", ca_key, ca.subject, False, 365, None)
    assert judge_certificate(pem(good), [ca], "db1", 30).ok
    assert not judge_certificate(pem(good), [ca], "db2", 30).ok
    assert not judge_certificate(pem(good), [other_ca], "db1", 30).ok
    soon, _ = cert("db1", ca_key, ca.subject, False, 5, None)
    verdict = judge_certificate(pem(soon), [ca], "db1", 30)
    assert not verdict.ok and "less than the policy's 30" in verdict.message
    foreign, _ = cert("db1", other_key, other_ca.subject, False, 365, None)
    assert not judge_certificate(pem(foreign), [ca], "db1", 30).ok


@pytest.mark.parametrize("address", ["db1 sslmode=disable", "db1'", "a|b", "db1\\x"])
def test_zone_targets_cannot_inject_connection_keywords(address: str) -> None:
    from types import MappingProxyType

    from walguard.errors import FactUnavailable
    from walguard.facts.network import probe_command
    from walguard.inventory.load import Target

    probe = Target("probe-a", "10.0.0.2", 22, None, None, False, (), MappingProxyType({}))
    bad = Target("db1", address, 22, None, None, False, (), MappingProxyType({}))
    with pytest.raises(FactUnavailable, match="cannot carry safely"):
        probe_command(probe, [bad], "@@T@@", "")
    good = Target("db1", "10.0.0.11", 22, None, None, False, (), MappingProxyType({}))
    assert "db1|db1|10.0.0.11|5432" in probe_command(probe, [good], "@@T@@", "")
