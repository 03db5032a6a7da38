"""The shards given to `walguard merge`, read as hostile input.

A shard comes from another CI job or controller, so nothing in it is trusted before it is
checked. Each shard is first copied into a private directory without following any link
(walguard.merge.untrusted_copy: a link, FIFO or device in it stops the merge, naming it); everything
after that (the signature check, results.json, junit.xml, the evidence moved into the merged
run) reads that copy, so the shard cannot change between being verified and being merged.
results.json must then be as walguard writes it (results.schema.json), and its run id and host
names must be names walguard itself writes before any path is built from them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walguard.exit_codes import Exit
from walguard.merge import untrusted_copy
from walguard.report import results_check, results_json
from walguard.results import Result
from walguard.signing import manifest, verify

EXIT_USAGE = int(Exit.USAGE)  # nothing was merged
NEED_CA = "give --ca CA.pem to verify the shards, or --no-verify to merge them unverified"
# What must be the same in every shard for them to be one audit, and how to say it.
ALIKE = (
    ("fail_on", "gate (--fail-on)", lambda d: d["fail_on"]),
    ("controls", "selected controls", lambda d: sorted(d["controls"])),
    ("remediate", "remediation mode", lambda d: d["run"]["remediate"]),
    ("active_probe", "--active-probe", lambda d: d["run"]["active_probe"]),
    ("restore_drill", "--restore-drill", lambda d: d["run"].get("restore_drill", False)),
    ("walguard", "walguard version and commit",
     lambda d: (d["run"]["walguard"]["version"], d["run"]["walguard"]["commit"])),
)  # fmt: skip
RESULT_FIELDS = ("host", "control", "title", "severity", "result", "message", "nodeid",
                 "remediation")  # fmt: skip


class MergeError(Exception):
    """The shards cannot be merged; `code` is the exit status, the message says why."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Shard:
    dir: Path  # as the operator named it: what messages say
    copy: Path  # the private copy that everything is read from
    doc: dict[str, Any]
    verified: bool | None = None  # None: not checked (--no-verify)
    lines: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.doc["run"]["id"])

    @property
    def signed(self) -> bool:
        return (self.copy / manifest.SIGNATURE).is_file()

    def record(self) -> dict[str, Any]:
        run = self.doc["run"]
        return {
            "id": self.id,
            "started": run["started"],
            "finished": run["finished"],
            "controller": run["controller"],
            "operator": run["operator"],
            "inventory_sha256": run["inventory"]["sha256"],
            "hosts": len(self.doc["hosts"]),
            "exit_status": self.doc["exit_status"],
            "gate": self.doc["gate"],
            "signer": (run.get("signing") or {}).get("subject") if self.signed else None,
            "verified": self.verified,
        }


def result_of(record: dict[str, Any]) -> Result:
    return Result(**{k: record[k] for k in RESULT_FIELDS})


def check_request(run_dirs: list[Path], out: Path, ca: Path | None, no_verify: bool) -> None:
    """What can be refused before any shard is read."""
    if not run_dirs:
        raise MergeError("name the run directories to merge")
    if ca is None and not no_verify:
        raise MergeError(NEED_CA)
    if ca is not None and no_verify:
        raise MergeError("--ca verifies the shards and --no-verify does not: give one of them")
    resolved = [d.resolve() for d in run_dirs]
    if len(set(resolved)) < len(run_dirs):
        raise MergeError("a run directory is named twice")
    target = out.resolve()
    for run_dir, real in zip(run_dirs, resolved, strict=True):
        if target.is_relative_to(real) or real.is_relative_to(target):
            raise MergeError(f"--out {out} and the shard {run_dir} are inside one another")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"{out} exists and is not an empty directory")


def read_shards(
    run_dirs: list[Path], staging: Path, ca: Path | None, tsa_ca: Path | None
) -> list[Shard]:
    """Each shard copied into `staging`, its signature verified first when `ca` is given, and
    its results.json checked."""
    shards = []
    for index, run_dir in enumerate(run_dirs):
        copy = staging / str(index)
        try:
            untrusted_copy.copy_tree(run_dir, copy)
        except untrusted_copy.Refused as exc:
            raise MergeError(f"{run_dir}: refused: {exc} (a shard may hold only regular files "
                             "and directories; merge follows no link)") from None  # fmt: skip
        except OSError as exc:
            raise MergeError(f"{run_dir}: {exc.strerror}: not a walguard run directory") from None
        if not (copy / "results.json").is_file():
            raise MergeError(f"{run_dir}: no results.json there: not a walguard run directory")
        shard = Shard(run_dir, copy, {})
        if ca is not None:
            found = verify.verify(copy, ca, tsa_ca)
            shard.lines = found.lines
            if found.code != verify.EXIT_OK:
                why = "; ".join(ln.removeprefix("FAIL  ") for ln in found.lines if "FAIL" in ln)
                raise MergeError(f"{run_dir}: does not verify against {ca}: {why}", found.code)
            shard.verified = True
        shard.doc = read_doc(run_dir, copy)
        shards.append(shard)
    check_alike(shards)
    return shards


def read_doc(run_dir: Path, copy: Path) -> dict[str, Any]:
    """The shard's results.json, refused unless it is as walguard writes it and names only
    runs and hosts that can be file names (walguard.report.results_check)."""
    where = f"{run_dir}/results.json"
    try:
        doc = results_json.read(copy)
    except (OSError, ValueError, RecursionError) as exc:
        raise MergeError(f"{where} cannot be read: {exc}") from None
    try:
        return results_check.check(doc, where)
    except results_check.UnfitResults as exc:
        raise MergeError(str(exc)) from None


def check_alike(shards: list[Shard]) -> None:
    """Refuses shards that cannot be one audit, naming what differs."""
    problems = []
    first = shards[0]
    for _, what, value in ALIKE:
        for other in shards[1:]:
            if value(other.doc) != value(first.doc):
                problems.append(f"{what} differ: {first.dir} has {_show(value(first.doc))}, "
                                f"{other.dir} has {_show(value(other.doc))}")  # fmt: skip
    owner: dict[str, Path] = {}
    for shard in shards:
        for host in shard.doc["hosts"]:
            if host in owner:
                problems.append(f"host {host} is in both {owner[host]} and {shard.dir}")
            owner.setdefault(host, shard.dir)
    if len({s.id for s in shards}) < len(shards):
        problems.append("two run directories hold the same run (the same run id)")
    if problems:
        more = [f"... and {len(problems) - 10} more"] if len(problems) > 10 else []
        shown = problems[:10] + more
        raise MergeError("the shards cannot be merged: " + "; ".join(shown))


def _show(value: Any) -> str:
    if isinstance(value, list) and len(value) > 6:
        return f"{len(value)} ({', '.join(map(str, value[:3]))}, ...)"
    return json.dumps(value) if not isinstance(value, str) else value
