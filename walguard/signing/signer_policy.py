"""Which certificates may sign a run: a signing key's, never a CA's, a TLS server's or a TSA's.

The signer's certificate must say CA:FALSE in a basicConstraints extension, allow
digitalSignature or nonRepudiation in keyUsage, and name in extendedKeyUsage only purposes the
policy allows: by default document signing (RFC 9336) and e-mail protection (S/MIME, which
CMS signing certificates often carry). A certificate with no extendedKeyUsage is refused: it
would be good for any purpose. The same rule is applied when signing starts and at verify.

The allowed purposes can be changed with --signer-eku (repeatable) or WALGUARD_SIGNER_EKU (a
comma-separated list); each is a dotted OID or one of the names in NAMES.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

ENV = "WALGUARD_SIGNER_EKU"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # RFC 9336 id-kp-documentSigning
NAMES: dict[str, x509.ObjectIdentifier] = {
    "documentSigning": DOCUMENT_SIGNING,
    "emailProtection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "codeSigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "timeStamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "OCSPSigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "anyExtendedKeyUsage": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
}
DEFAULT = (DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION)


class PolicyError(ValueError):
    """An allowed-purpose setting that names no purpose walguard knows."""


def _name(oid: x509.ObjectIdentifier) -> str:
    return next((n for n, o in NAMES.items() if o == oid), oid.dotted_string)


def allowed(given: Iterable[str] | None = None) -> tuple[x509.ObjectIdentifier, ...]:
    """The purposes that may sign: those given (options), else WALGUARD_SIGNER_EKU, else
    DEFAULT. PolicyError for a value that is neither a known name nor a dotted OID."""
    values = [v for item in given or () for v in item.split(",")]
    if not any(v.strip() for v in values):
        values = os.environ.get(ENV, "").split(",")
    found: list[x509.ObjectIdentifier] = []
    for raw in (v.strip() for v in values):
        if not raw:
            continue
        if raw in NAMES:
            found.append(NAMES[raw])
            continue
        try:
            found.append(x509.ObjectIdentifier(raw))
        except ValueError:
            known = ", ".join(NAMES)
            raise PolicyError(
                f"signer extended key usage {raw!r}: not a dotted OID nor one of {known}"
            ) from None
    return tuple(dict.fromkeys(found)) or DEFAULT


def problem(cert: x509.Certificate, allowed_ekus: Iterable[x509.ObjectIdentifier]) -> str | None:
    """Why `cert` may not sign a run, in one sentence; None when it may."""
    who = f"the signing certificate {cert.subject.rfc4514_string()}"
    ok = tuple(allowed_ekus)
    may = ", ".join(_name(o) for o in ok)
    try:
        ext = cert.extensions
    except ValueError as exc:  # a duplicate or undecodable extension
        return f"{who} has malformed extensions ({exc})"
    try:
        basic = ext.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return f"{who} has no basicConstraints: only a certificate marked CA:FALSE may sign"
    if basic.ca:
        return f"{who} is a CA certificate (CA:TRUE): only an end-entity certificate may sign"
    try:
        usage = ext.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return f"{who} has no keyUsage: it must allow digitalSignature or nonRepudiation"
    if not (usage.digital_signature or usage.content_commitment):
        return f"{who} has key usage without digitalSignature or nonRepudiation: it may not sign"
    try:
        purposes = list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return f"{who} has no extended key usage: only {may} may sign"
    refused = [_name(o) for o in purposes if o not in ok]
    if refused or not purposes:
        return f"{who} has extended key usage {', '.join(refused) or 'none'}: only {may} may sign"
    return None
