"""RFC 3161 timestamps of the signature (manifest.p7s), through the openssl command-line tool:
the request is `openssl ts -query`, sent by HTTP POST to the TSA, the reply is checked to be
granted and kept whole as manifest.p7s.tsr. It proves the signature existed at the TSA's time,
so the signer's certificate can be judged at that time even after it expires."""

from __future__ import annotations

import re
import subprocess
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

TIMEOUT_S = 30


class TimestampError(Exception):
    """The TSA could not be asked or did not grant a timestamp."""


def _openssl(args: list[str], *, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["openssl", *args], input=data, capture_output=True, timeout=60, check=False
        )
    except FileNotFoundError:
        raise TimestampError("the openssl command is not installed") from None


def request(url: str, signature: Path) -> bytes:
    """The TSA's reply (DER) for the SHA-256 of `signature`; TimestampError unless granted."""
    with tempfile.TemporaryDirectory(prefix="walguard-ts-") as tmp:
        query = Path(tmp) / "request.tsq"
        done = _openssl(["ts", "-query", "-data", str(signature), "-sha256", "-cert",
                         "-out", str(query)])  # fmt: skip
        if done.returncode != 0:
            raise TimestampError(f"openssl ts -query failed: {done.stderr.decode().strip()}")
        req = urllib.request.Request(
            url,
            data=query.read_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_S) as response:
                reply = bytes(response.read())
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise TimestampError(f"time-stamping authority {url}: {exc}") from None
        path = Path(tmp) / "reply.tsr"
        path.write_bytes(reply)
        text = _openssl(["ts", "-reply", "-in", str(path), "-text"])
        status = text.stdout.decode(errors="replace")
        if text.returncode != 0 or not re.search(r"Status: Granted", status):
            first = (status or text.stderr.decode(errors="replace")).strip().splitlines()[:3]
            raise TimestampError(f"time-stamping authority {url} did not grant: {' '.join(first)}")
    return reply


def token_time(reply: Path) -> datetime | None:
    """The time the TSA put in its token, or None when the reply cannot be read."""
    done = _openssl(["ts", "-reply", "-in", str(reply), "-text"])
    m = re.search(r"^Time stamp: (.+)$", done.stdout.decode(errors="replace"), re.M)
    if done.returncode != 0 or m is None:
        return None
    text = re.sub(r"\.\d+", "", m.group(1).strip())  # fractions of a second, when the TSA adds them
    try:
        return datetime.strptime(text, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)
    except ValueError:
        return None
