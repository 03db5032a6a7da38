"""What `walguard merge RUN_DIR... (--ca CA.pem | --no-verify) [--out DIR]` does (the subcommand
itself, its options and output, is walguard.commands.merge): the run directories of one audit's
shards (the inventory split across CI jobs or controllers) made into one run directory, as if
one controller had audited every host: results.json, junit.xml, report.html and every host's
evidence, and with signing options one signed manifest that lists the shards.

Shards are refused, with the reason, when they cannot be one audit: a host audited in two of
them, different controls selected, a different gate (`--fail-on`), remediation mode or active
probe, or another walguard. With `--ca`, every shard's signature is verified first (as `walguard
verify` does) and a shard that does not verify is refused; the merged manifest then says each
shard was verified. A signed shard's own manifest and signature are kept in `shards/<run id>/`,
so its signer's word stays checkable: the shard's manifest lists its evidence files by the same
paths they have in the merged directory. Without `--ca` the shards are refused unless
`--no-verify` says to merge them unchecked, and the merged run then says so in results.json
(`run.merged`), on its page and in its manifest.

Shards are hostile input (walguard.merge.shards): merge follows no link in them, builds no path
from a name it has not checked, and checks that every path it writes stays under --out.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from walguard.audit.runinfo import new_run_name, operator, utc_now
from walguard.exit_codes import Exit
from walguard.inventory.model import bad_name
from walguard.merge.shards import (
    EXIT_USAGE,
    MergeError,
    Shard,
    check_request,
    read_shards,
    result_of,
)
from walguard.report import html, results_json
from walguard.results import exit_status
from walguard.signing import manifest
from walguard.signing import signer as signing
from walguard.signing.sign_run import manifest_metadata, sign_run
from walguard.signing.tsa import TimestampError

EXIT_NOT_SIGNED = int(Exit.NOT_SIGNED)  # merged and written, but not signed (no timestamp)
SHARDS_DIR = "shards"
# The shards' private copies, inside --out while merging (so their evidence moves into place
# without being copied twice) and removed before anything is written or signed.
STAGING = ".merge-staging"
__all__ = ["EXIT_NOT_SIGNED", "EXIT_USAGE", "MergeError", "merge"]


def merged_doc(
    shards: list[Shard], run_id: str, signing_info: dict[str, Any] | None, ca: Path | None
) -> dict[str, Any]:
    """One results.json over every shard's hosts, with the gate recomputed from all results."""
    docs = [s.doc for s in shards]
    first = docs[0]
    hosts: dict[str, Any] = {}
    controls: dict[str, Any] = {}
    for doc in docs:
        hosts.update(doc["hosts"])
        controls.update(doc["controls"])
    missing = [m for doc in docs for m in doc["missing"]]
    results = [result_of(r) for h in hosts.values() for r in h["controls"]]
    gate = exit_status(results, first["fail_on"], complete=not missing)
    # A shard that pytest itself ended early (interrupt, internal error) keeps its status.
    kept = [d["exit_status"] for d in docs if d["exit_status"] not in (d["gate"], EXIT_NOT_SIGNED)]
    per_host = {name: h["policy_sha256"] for name, h in hosts.items()}
    run = dict(first["run"])
    run.update({
        "id": run_id,
        "started": min(d["run"]["started"] for d in docs),
        "finished": max(d["run"]["finished"] for d in docs),
        "command": list(sys.argv),
        "pytest_args": [],
        "operator": operator(),
        "controller": socket.gethostname(),
        "inventory": _inventory(docs),
        # The same hash a single run over every host gives (walguard.audit.runinfo).
        "policy_sha256": hashlib.sha256(json.dumps(per_host, sort_keys=True).encode()).hexdigest(),
        "signing": signing_info,
        "shards": [s.record() for s in shards],
        "merged": verification(ca),
    })  # fmt: skip
    return {
        "schema_version": results_json.SCHEMA_VERSION,
        "run": run,
        "fail_on": first["fail_on"],
        "selected": sum(d["selected"] for d in docs),
        "total": sum(d["total"] for d in docs),
        "missing": missing,
        "exit_status": kept[0] if kept else gate,
        "gate": gate,
        "summary": results_json.summary(hosts),
        "controls": dict(sorted(controls.items())),
        "hosts": hosts,
        # Drift, waivers and baselines were judged per shard: each shard's results.json keeps
        # its own (a WAIVED result here carries its waiver).
        "drift": {
            "previous": None,
            "note": "a merged run: each shard's own results.json "
            "holds its drift against that shard's previous run",
        },
    }


def _inventory(docs: list[dict[str, Any]]) -> dict[str, Any]:
    sources = [d["run"]["inventory"] for d in docs]
    digest = hashlib.sha256()
    for inv in sources:
        digest.update(f"{inv['sha256']}  {inv['source']}\n".encode())
    return {
        "source": " + ".join(inv["source"] for inv in sources),
        "sha256": digest.hexdigest(),
        "files": [f for inv in sources for f in inv["files"]],
    }


def verification(ca: Path | None) -> dict[str, Any]:
    """Whether the shards' signatures were checked before merging, as the merged run says it
    (results.json, report.html and the signed manifest)."""
    if ca is not None:
        why = f"every shard's signature was verified against {ca} before merging"
    else:
        why = (
            "merged with --no-verify: no shard's signature was checked, so their results and "
            "evidence are only as sound as every hand their run directories passed through"
        )
    return {"shards_verified": ca is not None, "why": why}


def inside(out: Path, path: Path) -> Path:
    """`path`, refused unless it is under `out`: a second line of defence after the names in
    a shard have been checked."""
    if not path.resolve().is_relative_to(out.resolve()) or path.resolve() == out.resolve():
        raise MergeError(f"{path} would be outside {out}: refused")
    return path


def placements(shards: list[Shard], out: Path) -> list[tuple[Path, Path]]:
    """Where each shard's evidence (and a signed shard's manifest, signature and timestamp)
    goes: a host's evidence at the same path, a probe host's (which every shard has) under the
    shard's run id. Anything that has no place is refused, never left behind silently."""
    hosts = {host for shard in shards for host in shard.doc["hosts"]}
    moves = []
    for shard in shards:
        source = shard.copy / "evidence"
        if source.exists() and not source.is_dir():
            raise MergeError(f"{shard.dir}/evidence is a file, not a directory of evidence")
        for entry in sorted(source.iterdir()) if source.is_dir() else []:
            where = f"{shard.dir}/evidence/{entry.name}"
            if not entry.is_dir():
                raise MergeError(f"{where}: a file where walguard writes a directory per host")
            if entry.name in shard.doc["hosts"]:
                dest = out / "evidence" / entry.name
            elif entry.name in hosts:
                raise MergeError(f"{where}: evidence of a host that another shard audited")
            elif why := bad_name(entry.name):
                raise MergeError(f"{where}: not a host name ({why})")
            else:
                dest = out / "evidence" / entry.name / shard.id
            moves.append((entry, inside(out, dest)))
        if shard.signed:
            kept = out / SHARDS_DIR / shard.id
            for name in (manifest.MANIFEST, manifest.SIGNATURE, manifest.TIMESTAMP):
                if (shard.copy / name).is_file():
                    moves.append((shard.copy / name, inside(out, kept / name)))
    return moves


def merge_junit(shards: list[Shard], out: Path) -> None:
    """One junit.xml holding every shard's test suite (named by its run id)."""
    merged = ET.Element("testsuites", {"name": "pytest tests"})
    for shard in shards:
        path = shard.copy / "junit.xml"
        if not path.is_file():
            continue
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as exc:
            raise MergeError(f"{shard.dir}/junit.xml cannot be read: {exc}") from None
        for suite in [root] if root.tag == "testsuite" else root.findall("testsuite"):
            suite.set("name", f"{suite.get('name', 'pytest')} ({shard.id})")
            merged.append(suite)
    ET.ElementTree(merged).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)


def new_out(first: Path) -> Path:
    """Beside the first shard, named as a run directory is (UTC start, random hex)."""
    parent = first.resolve().parent
    return parent / new_run_name(parent)


def merge(
    run_dirs: list[Path],
    out: Path | None = None,
    *,
    ca: Path | None = None,
    tsa_ca: Path | None = None,
    no_verify: bool = False,
    signer: signing.Signer | None = None,
    tsa_url: str | None = None,
) -> tuple[Path, dict[str, Any], str | None]:
    """Writes the merged run; returns its directory, its results.json and why it could not be
    signed (None when it was, or when no signer was given). Shards are verified against `ca`;
    without it they are refused unless `no_verify`, and the merged run then says so. When the
    shards are refused nothing is left behind."""
    if not run_dirs:
        raise MergeError("name the run directories to merge")
    out = out or new_out(run_dirs[0])
    check_request(run_dirs, out, ca, no_verify)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        doc = _write(run_dirs, out, ca, tsa_ca, signer.describe(tsa_url) if signer else None)
    except BaseException:
        _empty(out, remove=created)
        raise
    if signer is None:
        return out, doc, None
    metadata = {**manifest_metadata(doc), "shards": doc["run"]["shards"],
                "shards_verified": doc["run"]["merged"]["shards_verified"],
                "shards_verification": doc["run"]["merged"]["why"]}  # fmt: skip
    try:
        sign_run(out, signer, metadata, tsa_url)
    except TimestampError as exc:
        return out, doc, f"the merged run is signed but has no timestamp: {exc}"
    except OSError as exc:
        return out, doc, f"the merged run could not be signed: {exc}"
    return out, doc, None


def _write(
    run_dirs: list[Path],
    out: Path,
    ca: Path | None,
    tsa_ca: Path | None,
    info: dict[str, Any] | None,
) -> dict[str, Any]:
    staging = out / STAGING
    staging.mkdir()
    shards = read_shards(run_dirs, staging, ca, tsa_ca)
    doc = merged_doc(shards, out.name, info, ca)
    for source, dest in placements(shards, out):
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            raise MergeError(f"{dest} would be written twice")
        source.rename(dest)
    merge_junit(shards, out)
    shutil.rmtree(staging)
    doc["run"]["finished"] = doc["run"]["finished"] or utc_now()
    results_json.write(doc, out)
    html.write(doc, out)
    return doc


def _empty(out: Path, *, remove: bool) -> None:
    """Undoes a merge that was refused: `out` removed when merge made it, else emptied."""
    if remove:
        shutil.rmtree(out, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
