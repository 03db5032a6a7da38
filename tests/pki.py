"""A throwaway PKI for the signing tests: a CA, signer certificates (valid, expired, from another
CA), the other kinds of certificate a CA issues (which may not sign), CRLs and a time-stamping
authority answering `openssl ts -reply` over HTTP on localhost."""

from __future__ import annotations

import http.server
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    key_path: Path
    cert_path: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "walguard tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])  # fmt: skip


def _write(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey,
           cert: x509.Certificate) -> Issued:  # fmt: skip
    key_path, cert_path = directory / f"{stem}.key", directory / f"{stem}.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Issued(key, cert, key_path, cert_path)


def make_ca(directory: Path, cn: str = "walguard test CA") -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=3650)).not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return _write(directory, cn.replace(" ", "-"), key, cert)


DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # RFC 9336


def _usage(sign: bool, encipher: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=sign, content_commitment=sign and not encipher,
                         key_encipherment=encipher, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)  # fmt: skip


# What each kind of certificate is for: (CA?, key usage, extended key usages, EKU critical?).
# Only "signer" may sign a run; the others are what a CA also issues, and must be refused.
PROFILES: dict[str, tuple[bool, x509.KeyUsage, list[x509.ObjectIdentifier], bool]] = {
    "signer": (False, _usage(True), [DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION],
               False),
    "tsa": (False, _usage(True), [ExtendedKeyUsageOID.TIME_STAMPING], True),
    "server": (False, _usage(True, encipher=True), [ExtendedKeyUsageOID.SERVER_AUTH], False),
    "client": (False, _usage(True, encipher=True), [ExtendedKeyUsageOID.CLIENT_AUTH], False),
    # A sub-CA whose key usage and extended key usage would allow signing: CA:TRUE alone refuses.
    "sub-ca": (True, _usage(True, cert_sign=True), [ExtendedKeyUsageOID.EMAIL_PROTECTION], False),
}  # fmt: skip


def issue(directory: Path, ca: Issued, cn: str, *, days: tuple[int, int] = (-1, 365),
          profile: str = "signer") -> Issued:  # fmt: skip
    """A certificate of `profile` (PROFILES) valid from now+days[0] to now+days[1] (days may
    lie in the past)."""
    is_ca, usage, ekus, eku_critical = PROFILES[profile]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(ekus), critical=eku_critical)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )  # fmt: skip
    return _write(directory, cn.replace(" ", "-"), key, cert)


def crl(directory: Path, ca: Issued, revoked: list[Issued], *, days: tuple[int, int] = (-1, 7),
        name: str = "ca.crl") -> Path:  # fmt: skip
    """A PEM CRL of `ca` listing `revoked`, current from now+days[0] to now+days[1]."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now + timedelta(days=days[0])).next_update(now + timedelta(days=days[1]))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
    )  # fmt: skip
    for issued in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(issued.cert.serial_number)
            .revocation_date(now - timedelta(hours=1)).build()
        )  # fmt: skip
    path = directory / name
    path.write_bytes(builder.sign(ca.key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM))  # fmt: skip
    return path


TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


@contextmanager
def local_tsa(directory: Path, ca: Issued, *, ago: str | None = None) -> Iterator[str]:
    """An RFC 3161 TSA on 127.0.0.1 (openssl ts -reply behind http.server); yields its URL.
    With `ago` (e.g. "2 days ago"), its clock is set back with faketime: a token from the past,
    as an old run's would be."""
    directory.mkdir(parents=True, exist_ok=True)
    tsa = issue(directory, ca, "walguard test TSA", profile="tsa", days=(-10, 365))
    clock = ["faketime", ago] if ago else []
    (directory / "serial").write_text("01\n")
    config = directory / "tsa.cnf"
    config.write_text(TSA_CONFIG.format(dir=directory))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            done = subprocess.run(
                [*clock, "openssl", "ts", "-reply", "-config", str(config),
                 "-queryfile", "/dev/stdin", "-inkey", str(tsa.key_path),
                 "-signer", str(tsa.cert_path), "-chain", str(ca.cert_path), "-out", "/dev/stdout"],
                input=query, capture_output=True, check=False,
            )  # fmt: skip
            self.send_response(200 if done.returncode == 0 else 500)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.end_headers()
            self.wfile.write(done.stdout)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
    finally:
        server.shutdown()
        server.server_close()
