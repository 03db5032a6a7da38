"""Approving a waivers file, and checking the approval before an audit honours it.

An approval is a detached CMS signature (DER, binary) over the waivers file's exact bytes, made
with the approver's own certificate and written beside the file as FILE.p7s by
`walguard waivers approve FILE`. The approver is whom that certificate names
(walguard.history.waiver_identity), not anything the file says. Before an audit touches a host, the
approval must verify against the CA the operator names, and only that CA (not the system's
trust store); this is the same check with the openssl tool:

    openssl cms -verify -binary -inform DER -in FILE.p7s -content FILE \\
        -CAfile CA.pem -no-CApath -no-CAstore -purpose any -out /dev/null

A file changed by one byte after it was approved, an approval by a certificate of another CA or
one no longer valid, and an approval by an author of one of its waivers are usage errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from walguard.history.waiver_identity import Approval, Approver, IdentityError, approver_of
from walguard.history.waivers import (
    MAX_DAYS,
    MAX_DAYS_LIMIT,
    Rules,
    WaiverError,
    Waivers,
    check_four_eyes,
    parse,
    read,
)
from walguard.signing import signer
from walguard.signing.verify import EXIT_USAGE, _openssl, _why

SUFFIX = ".p7s"
EXIT_OK = 0


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def cms_command(signature: Path, content: Path, ca: Path) -> list[str]:
    """The plain OpenSSL check of an approval (the README shows the same): trusting `ca` alone."""
    return ["cms", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
            "-content", str(content), "-CAfile", str(ca), "-no-CApath", "-no-CAstore",
            "-purpose", "any", "-out", "/dev/null"]  # fmt: skip


def check_max_days(value: int, where: str) -> int:
    if not 1 <= value <= MAX_DAYS_LIMIT:
        raise WaiverError(
            f"{where} {value}: a critical control's waiver expires within 1 to {MAX_DAYS_LIMIT} "
            "days (a critical risk is accepted again at least once a year)"
        )
    return value


def verify(path: Path, data: bytes, ca: Path) -> Approval:
    """The approval of `data` (the bytes read from `path`): FILE.p7s verified against `ca`."""
    sig_path = signature_path(path)
    try:
        signature = sig_path.read_bytes()
    except FileNotFoundError:
        raise WaiverError(
            f"{path}: not approved: there is no {sig_path.name} beside it (the approver signs "
            f"the file with `walguard waivers approve {path} --sign-key KEY --sign-cert CERT`)"
        ) from None
    except OSError as exc:
        raise WaiverError(f"{sig_path}: cannot read the approval: {exc.strerror}") from None
    if not ca.is_file():
        raise WaiverError(f"approver CA {ca}: no such file")
    with tempfile.TemporaryDirectory(prefix="walguard-waivers-") as tmp:
        # The bytes already read are what is checked (and then parsed): not the file again.
        content, sig, signer_pem = Path(tmp, "waivers"), Path(tmp, "approval.p7s"), Path(tmp, "s")
        content.write_bytes(data)
        sig.write_bytes(signature)
        try:
            # 1. Does it sign these bytes, whoever made it? (-noverify: the chain comes next.)
            alone = _openssl("cms", "-verify", "-noverify", "-binary", "-inform", "DER",
                             "-in", str(sig), "-content", str(content),
                             "-signer", str(signer_pem), "-out", "/dev/null")  # fmt: skip
            if alone.returncode != 0:
                raise WaiverError(
                    f"{path}: {sig_path.name} is not an approval of this file: the file changed "
                    f"after it was approved, or the signature is of something else "
                    f"({_why(alone)}); have the file approved again"
                )
            try:
                certs = x509.load_pem_x509_certificates(signer_pem.read_bytes())
            except (OSError, ValueError):
                raise WaiverError(f"{path}: {sig_path.name} names no signer") from None
            subject = certs[0].subject.rfc4514_string()
            # 2. By a certificate of the named CA, valid now.
            full = _openssl(*cms_command(sig, content, ca))
        except FileNotFoundError:
            raise WaiverError("the openssl command is not installed") from None
    if full.returncode != 0:
        raise WaiverError(
            f"{path}: {sig_path.name} is signed by {subject}, whose certificate does not verify "
            f"against the approver CA {ca} ({_why(full)})"
        )
    if len(certs) != 1:
        raise WaiverError(f"{path}: {sig_path.name} has {len(certs)} signers: an approval has one")
    return Approval(_approver(path, certs[0]), certs[0], signature, str(ca))


def _approver(path: Path, cert: x509.Certificate) -> Approver:
    subject = cert.subject.rfc4514_string()
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ca = basic.ca
    except x509.ExtensionNotFound:
        ca = False
    except ValueError as exc:  # cryptography parses extensions only when asked for them
        raise WaiverError(f"{path}: the approver's certificate {subject}: {exc}") from None
    if ca:
        raise WaiverError(
            f"{path}: approved with the CA certificate {subject}: an approval is signed with a "
            "person's own certificate"
        )
    try:
        return approver_of(cert)
    except ValueError as exc:  # IdentityError, or an extension that cannot be parsed
        raise WaiverError(f"{path}: {exc}") from None


def load(
    path: Path,
    severities: Mapping[str, str],
    ca: Path,
    *,
    today: date | None = None,
    max_days: int = MAX_DAYS,
) -> Waivers:
    """The waivers in `path`, approved: the approval is verified before the file is read as YAML,
    then every rule is checked; WaiverError names file, line and key."""
    data = read(path)
    approval = verify(path, data, ca)
    rules = Rules(severities, today or datetime.now(UTC).date(), max_days)
    return check_four_eyes(parse(path, data, rules), approval)


def approve(path: Path, key: signer.Signer, rules: Rules) -> Approval:
    """Signs `path` as approved by `key`'s certificate, writing FILE.p7s; refuses a file the
    audit would refuse, and an approver who is the author of one of its waivers."""
    data = read(path)
    waivers = parse(path, data, rules)
    try:
        approver = approver_of(key.cert)
    except IdentityError as exc:
        raise WaiverError(str(exc)) from None
    check_four_eyes(waivers, Approval(approver, key.cert, b"", ""))
    signature = key.sign(data)
    out = signature_path(path)
    # Whole or not at all: an audit reading a half-written approval would refuse the file.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(signature)
        os.replace(tmp, out)
    except OSError as exc:
        raise WaiverError(f"{out}: cannot write the approval: {exc.strerror}") from None
    return Approval(approver, key.cert, signature, "")


def command(args: argparse.Namespace) -> int:
    """`walguard waivers approve FILE`: key and certificate as for `walguard sign`."""
    from walguard.controls import ControlsError, load_all
    from walguard.paths import CHECKS_DIR

    path = Path(args.file)
    # The approver's own key, named here: never WALGUARD_SIGN_KEY and the like, which on a jump
    # host name the audit's key (an approval by the robot would accept any risk). A password
    # may still come from WALGUARD_SIGN_PASSWORD.
    opts = signer.SignOptions(
        key=args.sign_key, cert=args.sign_cert, chain=args.sign_chain, pkcs12=args.sign_pkcs12,
        password_file=args.sign_password_file,
    )  # fmt: skip
    try:
        given = args.waiver_max_days
        days = check_max_days(MAX_DAYS if given is None else given, "--waiver-max-days")
        key = signer.load(opts)
        every = load_all(CHECKS_DIR, [Path(d) for d in args.checks])
        severities = {c.id: c.severity for c in every.values()}
        approval = approve(path, key, Rules(severities, max_days=days))
        if args.approver_ca:  # the audit's own check, at once
            load(path, severities, Path(args.approver_ca), max_days=days)
    except (signer.SignerError, WaiverError, ControlsError) as exc:
        print(f"walguard: cannot approve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    fingerprint = approval.cert.fingerprint(hashes.SHA256()).hex()
    print(
        f"approved: {path} by {approval.approver.name} (certificate SHA-256 {fingerprint}); "
        f"the approval is {signature_path(path)}"
    )
    return EXIT_OK
