"""A run directory given to `walguard export`, read as hostile input.

Whoever hands a run directory over (a CI artefact, a share, a mail) could have changed anything
in it, so nothing in it is trusted before it is checked, and nothing in it is executed. As
`walguard merge` does with a shard, the run is first copied into a private directory without
following any link (walguard.merge.untrusted_copy): a symbolic link, FIFO or device anywhere in
it, a file larger than walguard writes, or more files than a run holds, stops the export, naming
it. Everything after that reads the copy, so the run cannot change between being verified and
being exported:

- with a CA, the signature and every file are verified first (walguard.signing.verify, as
  `walguard verify` does) and a run that does not verify is refused with verify's exit status;
- results.json must be as walguard writes it (walguard.report.results_check), its times real
  times, and every evidence file it cites a plain path under `evidence/` that is in the run;
- the SHA-256 of every file the export names is computed from the copy's bytes, and when the run
  has a manifest, held against it: a file it does not list, or lists with another SHA-256, is
  refused, CA or not.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from walguard.exit_codes import Exit
from walguard.merge import untrusted_copy
from walguard.report import results_check
from walguard.signing import manifest, verify

EXIT_USAGE = int(Exit.USAGE)
EXIT_CHANGED = int(Exit.CHANGED)
EXIT_ADDED = int(Exit.ADDED)
# Far above what a run of a thousand hosts holds (its results.json is tens of MB, each evidence
# file at most a few MB), far below what would fill a disk or take minutes to hash.
LIMITS = untrusted_copy.Limits(file_bytes=256 << 20, files=200_000, total_bytes=4 << 30)
RESULTS = "results.json"
REPORT = "report.html"
EVIDENCE = "evidence"
SIGNATURE_FILES = (manifest.MANIFEST, manifest.SIGNATURE, manifest.TIMESTAMP)
MAX_PATH = 4096
TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ")


class ExportError(Exception):
    """The run cannot be exported; `code` is the exit status, the message (one line) says why."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Signature:
    signed: bool  # the run has a manifest and its signature, manifest.p7s
    verified: bool  # this export verified both against `ca_sha256`'s CA: never true without one
    ca_sha256: str | None = None


@dataclass(frozen=True)
class RunInput:
    """What the export reads of a run: its results.json, the SHA-256 of every file it names
    (results.json, report.html, the evidence, the manifest and its signature), and whether the
    signature was verified."""

    doc: dict[str, Any]
    files: dict[str, str]  # path in the run -> SHA-256 of its bytes
    evidence: tuple[str, ...]  # the evidence files results.json names, sorted
    signature: Signature

    @property
    def run_id(self) -> str:
        return str(self.doc["run"]["id"])


def read_run(run_dir: Path, ca: Path | None = None, tsa_ca: Path | None = None) -> RunInput:
    """The run at `run_dir`, read from a private copy and checked as the module says."""
    with tempfile.TemporaryDirectory(prefix="walguard-export-") as tmp:
        copy = Path(tmp) / "run"
        try:
            untrusted_copy.copy_tree(run_dir, copy, LIMITS)
        except untrusted_copy.Refused as exc:
            raise ExportError(f"{run_dir}: refused: {exc} (a run directory may hold only regular "
                              "files and directories of the sizes walguard writes; export "
                              "follows no link)") from None  # fmt: skip
        except OSError as exc:
            raise ExportError(f"{run_dir}: {exc.strerror}: not a walguard run directory") from None
        if not _is_file(copy, RESULTS):
            raise ExportError(f"{run_dir}: no results.json there: not a walguard run directory")
        signature = _signature(run_dir, copy, ca, tsa_ca)
        doc = _results(run_dir, copy)
        evidence = cited_evidence(doc, f"{run_dir}/{RESULTS}")
        for rel in evidence:
            if not _is_file(copy, rel):
                raise ExportError(f"{run_dir}/{RESULTS} names {rel}, which is not a file of the "
                                  "run")  # fmt: skip
        names = [RESULTS, REPORT, *evidence, *SIGNATURE_FILES]
        files = {rel: manifest.sha256_file(copy / rel) for rel in names if _is_file(copy, rel)}
        _against_manifest(run_dir, copy, files)
        return RunInput(doc, files, tuple(evidence), signature)


def _is_file(copy: Path, rel: str) -> bool:
    """A regular file in the copy (which holds nothing else, and no link: looked at by lstat
    all the same)."""
    try:
        return stat.S_ISREG(os.lstat(copy / rel).st_mode)
    except OSError:
        return False


def _signature(run_dir: Path, copy: Path, ca: Path | None, tsa_ca: Path | None) -> Signature:
    signed = _is_file(copy, manifest.MANIFEST) and _is_file(copy, manifest.SIGNATURE)
    if ca is None:
        return Signature(signed, False)
    found = verify.verify(copy, ca, tsa_ca)
    if found.code != verify.EXIT_OK:
        why = "; ".join(ln.removeprefix("FAIL  ") for ln in found.lines if ln.startswith("FAIL"))
        raise ExportError(f"{run_dir}: does not verify against {ca}: "
                          f"{results_check.short(why, 600)}", found.code)  # fmt: skip
    return Signature(True, True, manifest.sha256_file(ca))


def _results(run_dir: Path, copy: Path) -> dict[str, Any]:
    where = f"{run_dir}/{RESULTS}"
    try:
        doc = json.loads((copy / RESULTS).read_bytes().decode("utf-8"))
    except RecursionError:
        raise ExportError(f"{where} cannot be read: nested too deeply") from None
    except ValueError as exc:  # not UTF-8, not JSON, a number too long to read
        raise ExportError(f"{where} cannot be read: {results_check.short(str(exc))}") from None
    try:
        checked = results_check.check(doc, where)
    except results_check.UnfitResults as exc:
        raise ExportError(str(exc)) from None
    _check_times(checked, where)
    for name, host in checked["hosts"].items():
        seen: set[str] = set()
        for record in host["controls"]:
            if record["control"] in seen:
                raise ExportError(f"{where}: hosts.{name}: two results for {record['control']}")
            seen.add(record["control"])
    return checked


def parse_time(value: str) -> datetime | None:
    """A UTC time as results.json writes it, or None when it is not a real time of this era
    (its schema checks only the shape: the 31st of February would pass)."""
    for form in TIME_FORMATS:
        try:
            when = datetime.strptime(value, form)
        except ValueError:
            continue
        return when if 1970 <= when.year <= 2999 else None
    return None


def _check_times(doc: dict[str, Any], where: str) -> None:
    times = [("run.started", doc["run"]["started"]), ("run.finished", doc["run"]["finished"])]
    for name, host in doc["hosts"].items():
        collection = host.get("collection") or {}
        for key in ("started", "finished"):
            if key in collection:
                times.append((f"hosts.{name}.collection.{key}", collection[key]))
    for field, value in times:
        if parse_time(value) is None:
            raise ExportError(f"{where}: {field}: {results_check.short(repr(value))} is not a "
                              "time walguard writes")  # fmt: skip


def evidence_path(value: str) -> bool:
    """`value` is a path walguard writes for an evidence file: `evidence/HOST/...`, relative,
    each part a plain name (no `.` or `..`, nothing hidden, no backslash or control
    character)."""
    parts = value.split("/")
    return (
        len(value) <= MAX_PATH
        and value.isprintable()
        and "\\" not in value
        and len(parts) >= 3
        and parts[0] == EVIDENCE
        and all(part and not part.startswith(".") for part in parts)
    )


def cited_evidence(doc: dict[str, Any], where: str) -> list[str]:
    """Every evidence file results.json names (each host's list and each result's references),
    sorted; a name that is not an evidence path inside the run is refused, naming where."""
    found: set[str] = set()
    for name, host in doc["hosts"].items():
        named = [(f"hosts.{name}.evidence[{i}]", f) for i, f in enumerate(host["evidence"])]
        for i, record in enumerate(host["controls"]):
            named += [(f"hosts.{name}.controls[{i}].evidence[{j}].file", ref["file"])
                      for j, ref in enumerate(record["evidence"])]  # fmt: skip
        for field, value in named:
            if not evidence_path(value):
                raise ExportError(f"{where}: {field}: {results_check.short(repr(value))} is not "
                                  "a file under the run's evidence/ directory")  # fmt: skip
            found.add(value)
    return sorted(found)


def _against_manifest(run_dir: Path, copy: Path, files: dict[str, str]) -> None:
    """Every file the export names has the SHA-256 the run's manifest lists for it, when the
    run has a manifest (verified or not: a run that contradicts its own manifest is refused
    either way)."""
    if manifest.MANIFEST not in files:
        return
    listed = manifest.parse((copy / manifest.MANIFEST).read_bytes())
    if listed.malformed:
        raise ExportError(f"{run_dir}/manifest: {listed.malformed[0]} is not a `SHA256  path` "
                          "line (walguard verify names every problem)", EXIT_CHANGED)  # fmt: skip
    for rel, digest in files.items():
        if rel in manifest.UNLISTED:
            continue
        want = listed.files.get(rel)
        if want is None:
            raise ExportError(f"{run_dir}: {rel} is not listed in the run's manifest: it was "
                              "added after signing (walguard verify names every change)",
                              EXIT_ADDED)  # fmt: skip
        if want != digest:
            raise ExportError(f"{run_dir}: {rel} does not have the SHA-256 the run's manifest "
                              "lists: it changed since signing (walguard verify names every "
                              "change)", EXIT_CHANGED)  # fmt: skip
