"""RFC 3161 timestamps of the signature (manifest.p7s), through the openssl command-line tool:
the request is `openssl ts -query`, sent by HTTP POST to the TSA, the reply is checked to be
granted and kept whole as manifest.p7s.tsr. It proves the signature existed at the TSA's time,
so the signer's certificate can be judged at that time even after it expires.

The reply is read with asn1crypto, never from `openssl ts -reply -text`: that text also prints
the reply's status string, which is outside the TSA's signature, so anyone could write a
"Time stamp:" line of their choosing into it. The time is the genTime of the signed TSTInfo,
read from the very token bytes that `openssl ts -verify` checks (verify.py)."""

from __future__ import annotations

import subprocess
import tempfile
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import cms, core, tsp

TIMEOUT_S = 30


class _Reply(core.Sequence):  # type: ignore[misc]  # asn1crypto has no type hints
    """RFC 3161 TimeStampResp. asn1crypto's own tsp.TimeStampResp requires the token, which a
    refusal does not carry, so a refusal would read as garbage instead of saying why."""

    _fields = [  # noqa: RUF012 (asn1crypto's declaration style)
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


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
        token(reply, f"time-stamping authority {url}")
    return reply


def token(reply: bytes, source: str) -> bytes:
    """The timestamp token (DER ContentInfo) of a granted reply; TimestampError otherwise."""
    try:
        resp = _Reply.load(reply, strict=True)
        status = resp["status"]["status"].native
        found = resp["time_stamp_token"]
        data: bytes | None = None if isinstance(found, core.Void) else bytes(found.dump())
    except (ValueError, TypeError, KeyError) as exc:
        why = " ".join(str(exc).split())
        raise TimestampError(f"{source}: not an RFC 3161 timestamp reply ({why})") from None
    if status not in ("granted", "granted_with_mods"):
        said = resp["status"]["status_string"].native or []
        raise TimestampError(f"{source} did not grant: status {status} {' '.join(said)}".strip())
    if data is None:
        raise TimestampError(f"{source}: the reply says granted but holds no token")
    return data


def token_time(token_der: bytes) -> datetime:
    """The genTime of the TSTInfo signed in `token_der` (a token from token()); TimestampError
    when the token holds none."""
    try:
        signed = cms.ContentInfo.load(token_der, strict=True)["content"]
        content = signed["encap_content_info"]
        if content["content_type"].native != "tst_info":
            raise ValueError(f"content type {content['content_type'].native}, not TSTInfo")
        when = content["content"].parsed["gen_time"].native
    except (ValueError, TypeError, KeyError) as exc:
        why = " ".join(str(exc).split())
        raise TimestampError(f"the timestamp token holds no readable time ({why})") from None
    if not isinstance(when, datetime):
        raise TimestampError("the timestamp token holds no readable time")
    return when.astimezone(UTC)
