"""Earlier runs in a reports directory: finding them, trusting them, reading their verdicts.

Drift (walguard.history.drift), WG-SYS-004's journal baseline (walguard.history.journal_baseline),
`--baseline` and
retention (walguard.history.retention) all look back at runs written before. A run is a directory
`YYYYMMDDTHHMMSSZ-xxxxxx` holding results.json; it belongs to an inventory (and `--limit`) by
what is recorded in it. An earlier run is evidence only when its signature and every file verify
against the CA the operator trusts (`--verify-ca`): anyone who can write to the reports folder
can plant or edit a directory, so a run that does not verify is named and passed over, and
without a CA there is no previous run at all. Files of a verified run are read back only as the
verified manifest lists them (their SHA-256 checked again on reading), so a file swapped after
the verification is noticed too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from walguard.signing import manifest
from walguard.signing.verify import verify

RUN_NAME = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
# A file read back from a verified run is held in memory to check it: nothing a run writes is
# near this, and a file swapped for a huge one is refused rather than read.
MAX_READ_BYTES = 64 << 20

Pair = tuple[str, str]


class ChangedSinceVerified(ValueError):
    """A file of a verified run is not what its verified manifest lists (or is not listed)."""


def read_as_listed(path: Path, digest: str) -> bytes:
    """The file's bytes, only if their SHA-256 is `digest` (checked on the bytes returned)."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_READ_BYTES + 1)
    except OSError as exc:
        raise ChangedSinceVerified(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_READ_BYTES or hashlib.sha256(data).hexdigest() != digest:
        raise ChangedSinceVerified(f"{path} changed since its run was verified")
    return data


@dataclass(frozen=True)
class EarlierRun:
    path: Path
    doc: dict[str, Any]
    verified: bool  # its signature and every file checked against a trusted CA
    verification: str  # how that went, in one line
    # path in the run -> SHA-256, as the verified manifest lists them
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def run_id(self) -> str:
        return str(self.doc.get("run", {}).get("id", self.path.name))

    def read(self, rel: str) -> bytes:
        """A file of the run as the verified manifest vouches for it."""
        digest = self.files.get(rel)
        if digest is None:
            raise ChangedSinceVerified(f"{self.path / rel} is not listed in the run's manifest")
        return read_as_listed(self.path / rel, digest)

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


@dataclass(frozen=True)
class Skipped:
    """A run of the same inventory that was passed over, and why."""

    path: Path
    why: str

    def as_dict(self) -> dict[str, str]:
        return {"run": self.path.name, "dir": str(self.path), "why": self.why}


@dataclass(frozen=True)
class Previous:
    """The one answer to "which run came before this one", found once per audit: drift and
    WG-SYS-004's journal baseline both read it."""

    run: EarlierRun | None
    note: str = ""  # why there is none
    skipped: tuple[Skipped, ...] = ()


def is_signed(run_dir: Path) -> bool:
    return (run_dir / manifest.SIGNATURE).is_file() and (run_dir / manifest.MANIFEST).is_file()


def _as_doc(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("hosts"), dict) else None


def read_doc(run_dir: Path) -> dict[str, Any] | None:
    """results.json as it is on disk: unverified, good only for choosing what to verify."""
    try:
        return _as_doc((run_dir / "results.json").read_bytes())
    except OSError:
        return None


def selection_key(source: str, limit: str | None) -> str:
    """Which runs are runs of the same hosts: the inventory's source, and the --limit if any
    (a pre-change gate's limited run beside the nightly's is neither's previous run)."""
    return source if limit is None else f"{source} --limit {limit}"


def inventory_of(doc: dict[str, Any]) -> str | None:
    inventory = doc.get("run", {}).get("inventory", {})
    if not isinstance(inventory, dict) or inventory.get("source") is None:
        return None
    return selection_key(str(inventory["source"]), inventory.get("limit"))


def runs_in(root: Path) -> list[Path]:
    """The run directories under root, newest first (their names start with the UTC time)."""
    try:
        found = [d for d in root.iterdir() if d.is_dir() and RUN_NAME.match(d.name)]
    except OSError:
        return []
    return sorted(found, key=lambda d: d.name, reverse=True)


def load_verified(run_dir: Path, ca: Path) -> EarlierRun | str:
    """The run with its results.json read back through its verified manifest, or why it
    cannot be trusted."""
    if not is_signed(run_dir):
        return "not signed"
    verdict = verify(run_dir, ca)
    if verdict.code != 0:
        failed = [line.removeprefix("FAIL  ") for line in verdict.lines if line.startswith("FAIL")]
        return f"does not verify (walguard verify exit {verdict.code}): {'; '.join(failed)}"
    try:
        listed = manifest.parse((run_dir / manifest.MANIFEST).read_bytes())
    except OSError as exc:
        return f"its manifest cannot be read: {exc.strerror or exc}"
    how = f"signature and every file verified against {ca}"
    run = EarlierRun(run_dir, {}, True, how, MappingProxyType(dict(listed.files)))
    try:
        doc = _as_doc(run.read("results.json"))
    except ChangedSinceVerified as exc:
        return str(exc)
    if doc is None:
        return "its results.json is not a walguard run's"
    return replace(run, doc=doc)


def no_ca_note() -> str:
    return (
        "no CA to verify earlier runs with (--verify-ca): an unverified run is not evidence, "
        "so there is no previous run"
    )


def find_previous(root: Path, current: Path, inventory: str, ca: Path | None) -> Previous:
    """The newest run of the same inventory (and --limit) written before `current` that
    verifies against the CA. The runs of that inventory passed over on the way (not signed,
    not verifying) are named."""
    if ca is None:
        return Previous(None, no_ca_note())
    skipped = []
    for run_dir in runs_in(root):
        if run_dir.name >= current.name:
            continue
        doc = read_doc(run_dir)
        if doc is None or inventory_of(doc) != inventory:
            continue  # not a run of these hosts (whatever else it is)
        found = load_verified(run_dir, ca)
        if isinstance(found, str):
            skipped.append(Skipped(run_dir, found))
        elif inventory_of(found.doc) != inventory:
            skipped.append(Skipped(run_dir, "its verified results.json is of another inventory"))
        else:
            return Previous(found, "", tuple(skipped))
    return Previous(
        None, f"no earlier run of inventory {inventory} in {root} verifies", tuple(skipped)
    )


class BaselineError(ValueError):
    """`--baseline RUN_DIR` cannot be used: a usage error before any host is touched."""


def load_baseline(run_dir: Path, ca: Path | None) -> EarlierRun:
    """The run a pre-change gate compares with. It excuses failures, so it must verify: a
    gate must not trust a results.json anyone could have edited or planted."""
    if not run_dir.is_dir():
        raise BaselineError(f"--baseline {run_dir}: not a directory")
    doc = read_doc(run_dir)
    if doc is None:
        raise BaselineError(f"--baseline {run_dir}: no readable walguard results.json in it")
    if ca is None:
        raise BaselineError(
            f"--baseline {run_dir}: needs --verify-ca (or WALGUARD_VERIFY_CA): a baseline "
            "that is not verified could excuse any failure"
        )
    found = load_verified(run_dir, ca)
    if isinstance(found, str):
        raise BaselineError(f"--baseline {run_dir}: {found}")
    if found.doc.get("schema_version") != 1:
        raise BaselineError(
            f"--baseline {run_dir}: results.json schema version "
            f"{found.doc.get('schema_version')!r} is not one this walguard reads (1)"
        )
    return found
