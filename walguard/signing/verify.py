"""`walguard verify RUN_DIR --ca CA.pem`: the signature and its certificate chain (with the openssl
command-line tool, the same commands the README shows), the timestamp when there is one, then
every file against the manifest. Every problem is named; the exit status says the most basic one.

Exit statuses (walguard.exit_codes; README: Exit codes):
  0  signature, certificate chain, timestamp (if any) and every file verified
  4  bad command line, or RUN_DIR / CA file unreadable, or no openssl
  9  not a signed run: no manifest or manifest.p7s
  10 bad signature: manifest.p7s is not a valid signature of the manifest (the manifest was
     changed, or the signature was made by a key other than its certificate's)
  11 untrusted certificate: the signer's certificate does not chain to --ca (and only to it:
     the machine's own trust store is never consulted), is revoked by a --crl, or is not a
     signing certificate (signer_policy)
  12 expired certificate: the signer's certificate was not valid at the time that counts (the
     timestamp's, else now)
  13 bad timestamp: manifest.p7s.tsr does not verify against the signature and --tsa-ca, or the
     manifest promises a timestamp that is not there
  14 a file changed since signing
  15 a file listed in the manifest is missing
  16 a file was added that the manifest does not list
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from walguard.exit_codes import Exit
from walguard.signing import manifest, signer_policy, tsa

EXIT_OK = int(Exit.OK)
EXIT_USAGE = int(Exit.USAGE)
EXIT_UNSIGNED = int(Exit.UNSIGNED)
EXIT_BAD_SIGNATURE = int(Exit.BAD_SIGNATURE)
EXIT_UNTRUSTED = int(Exit.UNTRUSTED)
EXIT_EXPIRED = int(Exit.EXPIRED)
EXIT_BAD_TIMESTAMP = int(Exit.BAD_TIMESTAMP)
EXIT_CHANGED = int(Exit.CHANGED)
EXIT_MISSING = int(Exit.MISSING)
EXIT_ADDED = int(Exit.ADDED)

# The most basic problem decides the exit status: nothing a file check says can be trusted
# while the signature over the list itself does not hold.
PRECEDENCE = (
    EXIT_USAGE, EXIT_UNSIGNED, EXIT_BAD_SIGNATURE, EXIT_BAD_TIMESTAMP, EXIT_EXPIRED,
    EXIT_UNTRUSTED, EXIT_CHANGED, EXIT_MISSING, EXIT_ADDED,
)  # fmt: skip
# Only the CA files named are trusted: beside -CAfile, OpenSSL 3 would also look up issuers in
# its default certificate directory (the system's roots, or SSL_CERT_DIR) and default store.
# `openssl ts -verify` loads no default (it takes only what -CAfile/-CApath/-CAstore name).
ONLY_NAMED_CAS = ("-no-CApath", "-no-CAstore")
# openssl verify's error numbers (X509_V_ERR_*) that mean "outside its validity period".
_EXPIRED_ERRORS = {9, 10}  # certificate is not yet valid, certificate has expired


@dataclass
class Verdict:
    lines: list[str] = field(default_factory=list)
    codes: set[int] = field(default_factory=set)

    def ok(self, line: str) -> None:
        self.lines.append(f"OK    {line}")

    def bad(self, code: int, line: str) -> None:
        self.codes.add(code)
        self.lines.append(f"FAIL  {line}")

    @property
    def code(self) -> int:
        return next((c for c in PRECEDENCE if c in self.codes), EXIT_OK)


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["openssl", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _why(done: subprocess.CompletedProcess[str]) -> str:
    """openssl's reason in one line (its library error strings, without the noise)."""
    text = " ".join((done.stderr or done.stdout).split())
    m = re.search(r"(?:error \d+ at \d+ depth lookup|Verify error): ?([^:]+?)(?:$| error|:)", text)
    if m:
        return m.group(1).strip()
    reasons = re.findall(r":reason\(\d+\)|error:[0-9A-F]+:[^:]*:[^:]*:([^:]+)", text)
    reasons = [r for r in reasons if r]
    return "; ".join(dict.fromkeys(reasons)) if reasons else (text[:300] or "no reason given")


def _verify_error(done: subprocess.CompletedProcess[str]) -> int | None:
    m = re.search(r"error (\d+) at \d+ depth lookup", done.stderr + done.stdout)
    return int(m.group(1)) if m else None


def cms_command(run_dir: Path, ca: Path, attime: int | None = None) -> list[str]:
    """The plain OpenSSL check of the signature and chain (the README shows the same)."""
    argv = ["cms", "-verify", "-binary", "-inform", "DER",
            "-in", str(run_dir / manifest.SIGNATURE), "-content", str(run_dir / manifest.MANIFEST),
            "-CAfile", str(ca), *ONLY_NAMED_CAS, "-purpose", "any",
            "-out", "/dev/null"]  # fmt: skip
    if attime is not None:
        argv[-2:-2] = ["-attime", str(attime)]
    return argv


@dataclass(frozen=True)
class Trust:
    """What the operator trusts: the CA files, the CRLs, the purposes that may sign."""

    ca: Path
    tsa_ca: Path
    crls: tuple[Path, ...] = ()
    signer_ekus: tuple[x509.ObjectIdentifier, ...] = signer_policy.DEFAULT


def verify(
    run_dir: Path,
    ca: Path,
    tsa_ca: Path | None = None,
    *,
    crls: tuple[Path, ...] = (),
    signer_ekus: list[str] | None = None,
) -> Verdict:
    """The verdict on a signed run. `signer_ekus` None: WALGUARD_SIGNER_EKU, else the default
    policy (signer_policy)."""
    v = Verdict()
    named = [(run_dir, "run directory"), (ca, "CA file")]
    named += [(tsa_ca, "TSA CA file")] if tsa_ca is not None else []
    for path, what in [*named, *((crl, "CRL file") for crl in crls)]:
        if not path.exists():
            v.bad(EXIT_USAGE, f"{what} {path} does not exist")
    try:
        trust = Trust(ca, tsa_ca or ca, tuple(crls), signer_policy.allowed(signer_ekus))
    except signer_policy.PolicyError as exc:
        v.bad(EXIT_USAGE, str(exc))
    if v.codes:
        return v
    sig, man = run_dir / manifest.SIGNATURE, run_dir / manifest.MANIFEST
    for path in (man, sig):
        if not path.is_file():
            v.bad(EXIT_UNSIGNED, f"{path.name} is missing: this is not a signed run")
    if v.codes:
        return v
    try:
        with tempfile.TemporaryDirectory(prefix="walguard-verify-") as tmp:
            _signature(v, run_dir, trust, Path(tmp))
    except FileNotFoundError:
        v.bad(EXIT_USAGE, "the openssl command is not installed")
        return v
    listed = manifest.parse(man.read_bytes())
    for where in listed.malformed:
        v.bad(EXIT_CHANGED, f"manifest: {where} is not a `SHA256  path` line")
    found = manifest.check(run_dir, listed)
    for rel in found.changed:
        v.bad(EXIT_CHANGED, f"changed: {rel} differs from its SHA-256 in the manifest")
    for rel in found.missing:
        v.bad(EXIT_MISSING, f"missing: {rel} is listed in the manifest but not there")
    for rel in found.added:
        v.bad(EXIT_ADDED, f"added: {rel} is not listed in the manifest")
    for rel, kind in found.strays.items():
        v.bad(EXIT_ADDED, f"added: {rel} is {kind}: a signed run holds only its listed files")
    if found.ok() and not listed.malformed:
        v.ok(f"files: all {len(listed.files)} files match the manifest, none added")
    return v


def _signature(v: Verdict, run_dir: Path, trust: Trust, tmp: Path) -> None:
    sig, man = run_dir / manifest.SIGNATURE, run_dir / manifest.MANIFEST
    signer_pem, certs_pem = tmp / "signer.pem", tmp / "certs.pem"
    # 1. The signature itself, its chain left aside: does it sign these manifest bytes?
    done = _openssl(
        "cms", "-verify", "-noverify", "-binary", "-inform", "DER", "-in", str(sig),
        "-content", str(man), "-signer", str(signer_pem), "-out", "/dev/null",
    )  # fmt: skip
    if done.returncode != 0:
        why = _why(done)
        v.bad(EXIT_BAD_SIGNATURE, f"signature: manifest.p7s does not sign the manifest ({why})")
        return
    subject = _openssl("x509", "-in", str(signer_pem), "-noout", "-subject").stdout.strip()
    v.ok(f"signature: manifest.p7s signs the manifest ({subject})")
    # 2. The timestamp, when there is one (or promised): the time the chain is judged at.
    attime = _timestamp(v, run_dir, trust.tsa_ca, tmp)
    # 3. Only a signing certificate signs (not a CA's, a TLS server's, a TSA's).
    try:
        cert = x509.load_pem_x509_certificate(signer_pem.read_bytes())
        refused = signer_policy.problem(cert, trust.signer_ekus)
    except ValueError as exc:  # what openssl reads but cryptography finds malformed
        refused = f"the signer's certificate cannot be read ({exc})"
    if refused:
        v.bad(EXIT_UNTRUSTED, f"untrusted certificate: {refused}")
        return
    # 4. The signer's certificate against the CA (and the CRLs), at that time.
    _openssl("pkcs7", "-inform", "DER", "-in", str(sig), "-print_certs", "-out", str(certs_pem))
    args = ["verify", "-CAfile", str(trust.ca), *ONLY_NAMED_CAS, "-purpose", "any"]
    if certs_pem.is_file() and certs_pem.stat().st_size:
        args += ["-untrusted", str(certs_pem)]
    if attime is not None:
        args += ["-attime", str(attime)]
    if trust.crls:
        args += ["-crl_check", *(a for crl in trust.crls for a in ("-CRLfile", str(crl)))]
    chain = _openssl(*args, str(signer_pem))
    when = "at the timestamp's time" if attime is not None else "now"
    if chain.returncode != 0:
        code = EXIT_EXPIRED if _verify_error(chain) in _EXPIRED_ERRORS else EXIT_UNTRUSTED
        what = "expired certificate" if code == EXIT_EXPIRED else "untrusted certificate"
        why = _why(chain)
        v.bad(code, f"{what}: the signer's certificate does not verify against {trust.ca} "
              f"{when} ({why})")  # fmt: skip
        return
    # 5. The whole check as one plain command (the README's): it must agree.
    full = _openssl(*cms_command(run_dir, trust.ca, attime))
    if full.returncode != 0:
        v.bad(EXIT_UNTRUSTED, f"openssl cms -verify refuses the signature: {_why(full)}")
        return
    revoked = f", not revoked ({len(trust.crls)} CRL file(s))" if trust.crls else ""
    v.ok(f"certificate: the signer's certificate chains to {trust.ca} and is valid {when}"
         f"{revoked}")  # fmt: skip


def _timestamp(v: Verdict, run_dir: Path, tsa_ca: Path, tmp: Path) -> int | None:
    reply = run_dir / manifest.TIMESTAMP
    promised = manifest.parse((run_dir / manifest.MANIFEST).read_bytes()).metadata.get("tsa_url")
    if not reply.is_file():
        if promised:
            v.bad(EXIT_BAD_TIMESTAMP, f"timestamp: the manifest says one was requested from "
                  f"{promised}, but {reply.name} is missing")  # fmt: skip
        return None
    # The token is taken out of the reply once; openssl verifies these bytes and the time is
    # read from these bytes, so the time used is the one the TSA signed.
    try:
        token = tsa.token(reply.read_bytes(), reply.name)
        when = tsa.token_time(token)
    except tsa.TimestampError as exc:
        v.bad(EXIT_BAD_TIMESTAMP, f"timestamp: {exc}")
        return None
    token_der = tmp / "token.der"
    token_der.write_bytes(token)
    done = _openssl("ts", "-verify", "-token_in", "-in", str(token_der),
                    "-data", str(run_dir / manifest.SIGNATURE), "-CAfile", str(tsa_ca))  # fmt: skip
    if done.returncode != 0:
        why = _why(done)
        v.bad(EXIT_BAD_TIMESTAMP, f"timestamp: {reply.name} does not verify for manifest.p7s "
              f"against {tsa_ca} ({why})")  # fmt: skip
        return None
    v.ok(f"timestamp: manifest.p7s existed at {when.isoformat()} (RFC 3161, {reply.name})")
    return int(when.timestamp())
