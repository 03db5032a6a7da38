"""The signing key and certificate: read from PEM or PKCS#12 files named by options or the
environment, checked before the run touches any host, and used only in memory (the key is never
written anywhere, least of all into the run directory).

Environment variables (an option given on the command line wins):
  WALGUARD_SIGN_KEY            PEM private key file
  WALGUARD_SIGN_CERT           PEM certificate file (the signer's first; more certificates in it
                               are sent along as its chain)
  WALGUARD_SIGN_CHAIN          PEM file of intermediate certificates to include
  WALGUARD_SIGN_PKCS12         PKCS#12 file holding key, certificate and chain (instead of the
                               three above)
  WALGUARD_SIGN_PASSWORD_FILE  file whose first line is the key's or PKCS#12 file's password
  WALGUARD_SIGN_PASSWORD       the password itself (for CI secret stores); never an option, so
                               that it does not show in the process list or shell history
  WALGUARD_TSA_URL             RFC 3161 time-stamping authority to timestamp the signature
  WALGUARD_SIGNER_EKU          extended key usages a signing certificate may have (comma-separated
                               OIDs or names; default documentSigning, emailProtection): see
                               walguard.signing.signer_policy
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12

from walguard.signing import signer_policy

ENV = {
    "key": "WALGUARD_SIGN_KEY",
    "cert": "WALGUARD_SIGN_CERT",
    "chain": "WALGUARD_SIGN_CHAIN",
    "pkcs12": "WALGUARD_SIGN_PKCS12",
    "password_file": "WALGUARD_SIGN_PASSWORD_FILE",
    "tsa_url": "WALGUARD_TSA_URL",
    "signer_eku": signer_policy.ENV,
}
PASSWORD_ENV = "WALGUARD_SIGN_PASSWORD"


class SignerError(Exception):
    """A signing key or certificate that cannot be used, in one sentence for the operator."""


@dataclass(frozen=True)
class SignOptions:
    key: str | None = None
    cert: str | None = None
    chain: str | None = None
    pkcs12: str | None = None
    password_file: str | None = None
    tsa_url: str | None = None
    signer_eku: str | None = None  # comma-separated: the purposes that may sign

    @classmethod
    def resolve(cls, **given: str | None) -> SignOptions:
        """Options as given, else from the environment."""
        values = {k: given.get(k) or os.environ.get(env) or None for k, env in ENV.items()}
        return cls(**values)

    def wanted(self) -> bool:
        return bool(self.key or self.cert or self.pkcs12)


@dataclass(frozen=True)
class Signer:
    key: Any = field(repr=False)
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def describe(self, tsa_url: str | None) -> dict[str, Any]:
        """What results.json and the page say about the signer."""
        c = self.cert
        return {
            "subject": c.subject.rfc4514_string(),
            "issuer": c.issuer.rfc4514_string(),
            "serial": format(c.serial_number, "x"),
            "not_before": _utc(c.not_valid_before_utc),
            "not_after": _utc(c.not_valid_after_utc),
            "sha256_fingerprint": c.fingerprint(hashes.SHA256()).hex(),
            "tsa_url": tsa_url,
        }

    def sign(self, data: bytes) -> bytes:
        """A CMS SignedData, DER, detached, over `data` taken as bytes (Binary: no MIME
        line-ending translation, so `openssl cms -verify -binary` checks the same bytes)."""
        builder = pkcs7.PKCS7SignatureBuilder().set_data(data)
        builder = builder.add_signer(self.cert, self.key, hashes.SHA256())
        for extra in self.chain:
            builder = builder.add_certificate(extra)
        return builder.sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
        )


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise SignerError(f"{what} {path}: no such file") from None
    except IsADirectoryError:
        raise SignerError(f"{what} {path}: is a directory, not a file") from None
    except PermissionError:
        raise SignerError(f"{what} {path}: permission denied") from None


def _password(opts: SignOptions) -> bytes | None:
    if opts.password_file:
        lines = _read(opts.password_file, "password file").splitlines()
        return lines[0] if lines else b""
    value = os.environ.get(PASSWORD_ENV)
    return value.encode() if value is not None else None


def _certs(path: str, what: str) -> list[x509.Certificate]:
    data = _read(path, what)
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        try:
            certs = [x509.load_der_x509_certificate(data)]
        except ValueError:
            raise SignerError(f"{what} {path}: not a PEM or DER X.509 certificate") from None
    return certs


def _key_error(exc: Exception, path: str, password: bytes | None) -> SignerError:
    text = str(exc).lower()
    if password is None and ("encrypted" in text or "password" in text):
        return SignerError(
            f"signing key {path} is encrypted: give its password in --sign-password-file, "
            f"WALGUARD_SIGN_PASSWORD_FILE or {PASSWORD_ENV}"
        )
    if password is not None and ("password" in text or "decrypt" in text or "bad" in text):
        return SignerError(f"signing key {path}: wrong password")
    return SignerError(f"signing key {path}: not a usable private key ({exc})")


def load(opts: SignOptions) -> Signer:
    """The signer named by `opts`; SignerError for anything unusable."""
    password = _password(opts)
    chain: list[x509.Certificate] = []
    if opts.pkcs12:
        if opts.key:
            raise SignerError("give either a PKCS#12 file or a key and certificate, not both")
        data = _read(opts.pkcs12, "PKCS#12 file")
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password)
        except ValueError as exc:
            if password is None:
                raise SignerError(
                    f"PKCS#12 file {opts.pkcs12}: cannot open it without a password (or it is "
                    f"not a PKCS#12 file): give one in --sign-password-file or {PASSWORD_ENV}"
                ) from None
            raise SignerError(
                f"PKCS#12 file {opts.pkcs12}: wrong password or not a PKCS#12 file"
            ) from exc
        if key is None or cert is None:
            raise SignerError(f"PKCS#12 file {opts.pkcs12} holds no key and certificate pair")
        chain = list(extra)
        if opts.cert:
            cert = _certs(opts.cert, "signing certificate")[0]
    else:
        if not opts.key or not opts.cert:
            missing = "certificate (--sign-cert)" if opts.key else "key (--sign-key)"
            raise SignerError(f"signing needs a key and a certificate: no {missing} given")
        data = _read(opts.key, "signing key")
        try:
            key = serialization.load_pem_private_key(data, password)
        except (ValueError, TypeError) as exc:
            raise _key_error(exc, opts.key, password) from None
        certs = _certs(opts.cert, "signing certificate")
        cert, chain = certs[0], certs[1:]
    if opts.chain:
        chain += _certs(opts.chain, "certificate chain")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        edwards = isinstance(key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey)
        kind = "Ed25519/Ed448" if edwards else type(key).__name__
        raise SignerError(f"signing key: {kind} keys cannot sign CMS here; use RSA or ECDSA")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise SignerError(
            f"the signing key does not belong to the certificate {cert.subject.rfc4514_string()}"
        )
    try:
        refused = signer_policy.problem(cert, signer_policy.allowed([opts.signer_eku or ""]))
    except signer_policy.PolicyError as exc:
        raise SignerError(str(exc)) from None
    if refused:
        raise SignerError(refused)
    now = datetime.now(UTC)
    if cert.not_valid_after_utc < now:
        raise SignerError(
            f"the signing certificate {cert.subject.rfc4514_string()} expired on "
            f"{_utc(cert.not_valid_after_utc)}"
        )
    if cert.not_valid_before_utc > now:
        raise SignerError(
            f"the signing certificate {cert.subject.rfc4514_string()} is not valid before "
            f"{_utc(cert.not_valid_before_utc)}"
        )
    return Signer(key, cert, tuple(chain))
