"""Earlier runs in a reports directory: finding them, trusting them, reading their verdicts.

Drift (walguard.drift), `--baseline` and retention (walguard.retention) all look back at runs
written before. A run is a directory `YYYYMMDDTHHMMSSZ-xxxxxx` holding results.json; it belongs
to an inventory by the source recorded in it. An earlier run is evidence only when its signature
verifies against a CA the operator trusts: without one, it is used but said to be unverified.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walguard.signing import manifest
from walguard.signing.verify import verify

RUN_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")

Pair = tuple[str, str]


@dataclass(frozen=True)
class EarlierRun:
    path: Path
    doc: dict[str, Any]
    verified: bool  # its signature and every file checked against a trusted CA
    verification: str  # how that went, in one line

    @property
    def run_id(self) -> str:
        return str(self.doc.get("run", {}).get("id", self.path.name))

    def verdicts(self) -> dict[Pair, str]:
        """(host, control) -> result, as the run recorded them."""
        return {
            (name, str(c["control"])): str(c["result"])
            for name, host in self.doc.get("hosts", {}).items()
            for c in host.get("controls", [])
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.run_id,
            "dir": str(self.path),
            "signed": is_signed(self.path),
            "verified": self.verified,
            "verification": self.verification,
            "started": self.doc.get("run", {}).get("started"),
        }


def is_signed(run_dir: Path) -> bool:
    return (run_dir / manifest.SIGNATURE).is_file() and (run_dir / manifest.MANIFEST).is_file()


def read_doc(run_dir: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("hosts"), dict) else None


def selection_key(source: str, limit: str | None) -> str:
    """Which runs are runs of the same hosts: the inventory's source, and the --limit if any
    (a pre-change gate's limited run beside the nightly's is neither's previous run)."""
    return source if limit is None else f"{source} --limit {limit}"


def inventory_of(doc: dict[str, Any]) -> str | None:
    inventory = doc.get("run", {}).get("inventory", {})
    source = inventory.get("source")
    return selection_key(str(source), inventory.get("limit")) if source is not None else None


def runs_in(root: Path) -> list[Path]:
    """The run directories under root, newest first (their names start with the UTC time)."""
    try:
        found = [d for d in root.iterdir() if d.is_dir() and RUN_NAME.match(d.name)]
    except OSError:
        return []
    return sorted(found, key=lambda d: d.name, reverse=True)


def check(run_dir: Path, ca: Path | None) -> tuple[bool, str]:
    """(verified, how) for an earlier run: its signature and files against the CA."""
    if not is_signed(run_dir):
        return False, "not signed"
    if ca is None:
        return False, "signed, but not verified: no CA to verify it with (--verify-ca)"
    verdict = verify(run_dir, ca)
    if verdict.code == 0:
        return True, f"signature and every file verified against {ca}"
    failed = [line.removeprefix("FAIL  ") for line in verdict.lines if line.startswith("FAIL")]
    return False, f"does not verify (walguard verify exit {verdict.code}): {'; '.join(failed)}"


def previous_signed(
    root: Path, current: Path, inventory: str, ca: Path | None
) -> tuple[EarlierRun | None, str]:
    """The newest signed run of the same inventory written before `current`, checked against
    the CA; (None, why) when there is none."""
    for run_dir in runs_in(root):
        if run_dir.name >= current.name or not is_signed(run_dir):
            continue
        doc = read_doc(run_dir)
        if doc is None or inventory_of(doc) != inventory:
            continue
        verified, how = check(run_dir, ca)
        return EarlierRun(run_dir, doc, verified, how), ""
    return None, f"no earlier signed run of inventory {inventory} in {root}"


class BaselineError(ValueError):
    """`--baseline RUN_DIR` cannot be used: a usage error before any host is touched."""


def load_baseline(run_dir: Path, ca: Path | None) -> EarlierRun:
    """The run a pre-change gate compares with. With a CA it must verify; a baseline that
    does not is refused (a gate must not trust a results.json anyone could have edited)."""
    if not run_dir.is_dir():
        raise BaselineError(f"--baseline {run_dir}: not a directory")
    doc = read_doc(run_dir)
    if doc is None:
        raise BaselineError(f"--baseline {run_dir}: no readable walguard results.json in it")
    if doc.get("schema_version") != 1:
        raise BaselineError(
            f"--baseline {run_dir}: results.json schema version "
            f"{doc.get('schema_version')!r} is not one this walguard reads (1)"
        )
    verified, how = check(run_dir, ca)
    if ca is not None and not verified:
        raise BaselineError(f"--baseline {run_dir}: {how}")
    return EarlierRun(run_dir, doc, verified, how)
