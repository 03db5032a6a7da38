"""A server certificate judged as a client would judge it: it chains to the policy's CA, matches
the name clients use, and stays valid long enough. Verification is the `cryptography` package's
(RFC 5280 path building and name matching), not ours."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509 import DNSName, IPAddress
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store

from walguard.errors import FactUnavailable


@dataclass(frozen=True)
class CertVerdict:
    ok: bool
    message: str


def _subject(name: str) -> DNSName | IPAddress:
    try:
        return IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return DNSName(name)


def load_ca(path: str) -> list[x509.Certificate]:
    try:
        with open(path, "rb") as f:
            certs = x509.load_pem_x509_certificates(f.read())
    except OSError as exc:
        raise FactUnavailable(f"cannot read the policy's CA file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise FactUnavailable(
            f"the policy's CA file {path} holds no PEM certificate: {exc}"
        ) from None
    return certs


def judge_certificate(
    chain_pem: str,
    ca: list[x509.Certificate],
    name: str,
    min_days: int,
    now: dt.datetime | None = None,
) -> CertVerdict:
    now = now or dt.datetime.now(dt.UTC)
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError as exc:
        raise FactUnavailable(f"the server certificate file is not PEM: {exc}") from None
    leaf, intermediates = chain[0], chain[1:]
    subject = leaf.subject.rfc4514_string()
    expires = leaf.not_valid_after_utc
    # The Web PKI profile, except that the authority key identifier may be absent: libpq (OpenSSL)
    # accepts such certificates from internal CAs, and walguard judges as a client would.
    ee = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.AuthorityKeyIdentifier, Criticality.AGNOSTIC, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store(ca))
        .time(now)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
        .build_server_verifier(_subject(name))
    )
    try:
        verifier.verify(leaf, intermediates)
    except Exception as exc:  # VerificationError, and ValueError for malformed extensions
        return CertVerdict(False, f"certificate {subject} does not verify for {name!r}: {exc}")
    left = expires - now
    if left < dt.timedelta(days=min_days):
        return CertVerdict(
            False,
            f"certificate {subject} expires {expires:%Y-%m-%d %H:%M} UTC, in "
            f"{left.days} day(s): less than the policy's {min_days}",
        )
    return CertVerdict(
        True, f"{subject} chains to the CA, matches {name!r}, valid until {expires:%Y-%m-%d}"
    )
