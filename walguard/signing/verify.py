"""`walguard verify RUN_DIR --ca CA.pem`: the signature and its certificate chain (with the openssl
command-line tool, the same commands the README shows), the timestamp when there is one, then
every file against the manifest. Every problem is named; the exit status says the most basic one.

Exit statuses (walguard.exit_codes; README: Exit codes):
  0  signature, certificate chain, timestamp (if any) and every file verified
  4  bad command line, or RUN_DIR / CA file unreadable, or no openssl
  9  not a signed run: no manifest or manifest.p7s
  10 bad signature: manifest.p7s is not a valid signature of the manifest (the manifest was
     changed, or the signature was made by a key other than its certificate's)
  11 untrusted certificate: the signer's certificate does not chain to --ca
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

from walguard.exit_codes import Exit
from walguard.signing import manifest, tsa

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
            "-CAfile", str(ca), "-purpose", "any", "-out", "/dev/null"]  # fmt: skip
    if attime is not None:
        argv[-2:-2] = ["-attime", str(attime)]
    return argv


def verify(run_dir: Path, ca: Path, tsa_ca: Path | None = None) -> Verdict:
    v = Verdict()
    for path, what in ((run_dir, "run directory"), (ca, "CA file")):
        if not path.exists():
            v.bad(EXIT_USAGE, f"{what} {path} does not exist")
    if tsa_ca is not None and not tsa_ca.exists():
        v.bad(EXIT_USAGE, f"TSA CA file {tsa_ca} does not exist")
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
            _signature(v, run_dir, ca, tsa_ca or ca, Path(tmp))
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
    if found.ok() and not listed.malformed:
        v.ok(f"files: all {len(listed.files)} files match the manifest, none added")
    return v


def _signature(v: Verdict, run_dir: Path, ca: Path, tsa_ca: Path, tmp: Path) -> None:
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
    attime = _timestamp(v, run_dir, tsa_ca)
    # 3. The signer's certificate against the CA, at that time.
    _openssl("pkcs7", "-inform", "DER", "-in", str(sig), "-print_certs", "-out", str(certs_pem))
    args = ["verify", "-CAfile", str(ca), "-purpose", "any"]
    if certs_pem.is_file() and certs_pem.stat().st_size:
        args += ["-untrusted", str(certs_pem)]
    if attime is not None:
        args += ["-attime", str(attime)]
    chain = _openssl(*args, str(signer_pem))
    when = "at the timestamp's time" if attime is not None else "now"
    if chain.returncode != 0:
        code = EXIT_EXPIRED if _verify_error(chain) in _EXPIRED_ERRORS else EXIT_UNTRUSTED
        what = "expired certificate" if code == EXIT_EXPIRED else "untrusted certificate"
        why = _why(chain)
        v.bad(code, f"{what}: the signer's certificate does not verify against {ca} {when} ({why})")
        return
    # 4. The whole check as one plain command (the README's): it must agree.
    full = _openssl(*cms_command(run_dir, ca, attime))
    if full.returncode != 0:
        v.bad(EXIT_UNTRUSTED, f"openssl cms -verify refuses the signature: {_why(full)}")
        return
    v.ok(f"certificate: the signer's certificate chains to {ca} and is valid {when}")


def _timestamp(v: Verdict, run_dir: Path, tsa_ca: Path) -> int | None:
    token = run_dir / manifest.TIMESTAMP
    promised = manifest.parse((run_dir / manifest.MANIFEST).read_bytes()).metadata.get("tsa_url")
    if not token.is_file():
        if promised:
            v.bad(EXIT_BAD_TIMESTAMP, f"timestamp: the manifest says one was requested from "
                  f"{promised}, but {token.name} is missing")  # fmt: skip
        return None
    done = _openssl("ts", "-verify", "-data", str(run_dir / manifest.SIGNATURE),
                    "-in", str(token), "-CAfile", str(tsa_ca))  # fmt: skip
    if done.returncode != 0:
        why = _why(done)
        v.bad(EXIT_BAD_TIMESTAMP, f"timestamp: {token.name} does not verify for manifest.p7s "
              f"against {tsa_ca} ({why})")  # fmt: skip
        return None
    when = tsa.token_time(token)
    if when is None:
        v.bad(EXIT_BAD_TIMESTAMP, f"timestamp: {token.name} verifies but holds no readable time")
        return None
    v.ok(f"timestamp: manifest.p7s existed at {when.isoformat()} (RFC 3161, {token.name})")
    return int(when.timestamp())
