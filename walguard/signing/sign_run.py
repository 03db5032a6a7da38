"""Signing a written run directory: manifest, manifest.p7s and, with a TSA, manifest.p7s.tsr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from walguard.signing import manifest, tsa
from walguard.signing.signer import Signer


def manifest_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    """The run's metadata as the manifest states it (from results.json), so that the signed
    file itself says what was audited, by whom, when and with what."""
    run = doc["run"]
    hosts = doc["hosts"]
    signing = run.get("signing") or {}
    return {
        "run": run["id"],
        "walguard_version": run["walguard"]["version"],
        "walguard_commit": run["walguard"]["commit"],
        "walguard_tree_dirty": run["walguard"]["dirty"],
        "inventory": run["inventory"]["source"],
        "inventory_sha256": run["inventory"]["sha256"],
        "policy_sha256": run["policy_sha256"],
        "operator": run["operator"],
        "controller": run["controller"],
        "started_utc": run["started"],
        "finished_utc": run["finished"],
        "command": run["command"],
        "hosts_audited": sorted(n for n, h in hosts.items() if h["reachable"]),
        "hosts_unreachable": sorted(n for n, h in hosts.items() if h["reachable"] is False),
        "exit_status": doc["exit_status"],
        "signer": signing.get("subject"),
        "tsa_url": signing.get("tsa_url"),
        # What was waived, and against what the gate was judged, are part of what is signed.
        "waivers_sha256": (doc.get("waivers") or {}).get("sha256"),
        "baseline_run": (doc.get("baseline") or {}).get("run"),
        "drift_previous_run": ((doc.get("drift") or {}).get("previous") or {}).get("run"),
    }


def sign_run(
    run_dir: Path, signer: Signer, metadata: dict[str, Any], tsa_url: str | None = None
) -> list[Path]:
    """Writes the manifest and its signature (and timestamp); returns what it wrote. Raises
    tsa.TimestampError when a timestamp was asked for and not granted (the signature stays:
    it is valid without one, and `walguard verify` says the promised timestamp is missing)."""
    for stale in manifest.UNLISTED:
        (run_dir / stale).unlink(missing_ok=True)
    data = manifest.write(run_dir, metadata)
    signature = run_dir / manifest.SIGNATURE
    signature.write_bytes(signer.sign(data))
    written = [run_dir / manifest.MANIFEST, signature]
    if tsa_url:
        reply = tsa.request(tsa_url, signature)
        (run_dir / manifest.TIMESTAMP).write_bytes(reply)
        written.append(run_dir / manifest.TIMESTAMP)
    return written
