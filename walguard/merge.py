"""`walguard merge RUN_DIR... [--out DIR]`: the run directories of one audit's shards (the
inventory split across CI jobs or controllers) made into one run directory, as if one controller
had audited every host: results.json, junit.xml, report.html and every host's evidence, and with
signing options one signed manifest that lists the shards.

Shards are refused, with the reason, when they cannot be one audit: a host audited in two of
them, different controls selected, a different gate (`--fail-on`), remediation mode or active
probe, or another walguard. With `--ca`, every shard's signature is verified first (as `walguard
verify` does) and a shard that does not verify is refused; the merged manifest then says each
shard was verified. A signed shard's own manifest and signature are kept in `shards/<run id>/`,
so its signer's word stays checkable: the shard's manifest lists its evidence files by the same
paths they have in the merged directory.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import socket
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from walguard.exit_codes import Exit
from walguard.report import html, results_json
from walguard.report.runinfo import operator, utc_now
from walguard.results import Result, exit_status
from walguard.signing import manifest, verify
from walguard.signing import signer as signing
from walguard.signing.sign_run import manifest_metadata, sign_run
from walguard.signing.tsa import TimestampError

EXIT_USAGE = int(Exit.USAGE)  # nothing was merged
EXIT_NOT_SIGNED = int(Exit.NOT_SIGNED)  # merged and written, but not signed (no timestamp)
SHARDS_DIR = "shards"
# What must be the same in every shard for them to be one audit, and how to say it.
ALIKE = (
    ("fail_on", "gate (--fail-on)", lambda d: d["fail_on"]),
    ("controls", "selected controls", lambda d: sorted(d["controls"])),
    ("remediate", "remediation mode", lambda d: d["run"]["remediate"]),
    ("active_probe", "--active-probe", lambda d: d["run"]["active_probe"]),
    ("walguard", "walguard version and commit",
     lambda d: (d["run"]["walguard"]["version"], d["run"]["walguard"]["commit"])),
)  # fmt: skip


class MergeError(Exception):
    """The shards cannot be merged; `code` is the exit status, the message says why."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Shard:
    dir: Path
    doc: dict[str, Any]
    verified: bool | None = None  # None: not checked (no --ca)
    lines: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.doc["run"]["id"])

    @property
    def signed(self) -> bool:
        return (self.dir / manifest.SIGNATURE).is_file()

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


def read_shards(run_dirs: list[Path], ca: Path | None, tsa_ca: Path | None) -> list[Shard]:
    """Each shard's results.json, its signature verified first when `ca` is given."""
    if not run_dirs:
        raise MergeError("name the run directories to merge")
    if len({d.resolve() for d in run_dirs}) < len(run_dirs):
        raise MergeError("a run directory is named twice")
    shards = []
    for run_dir in run_dirs:
        if not (run_dir / "results.json").is_file():
            raise MergeError(f"{run_dir}: no results.json there: not a walguard run directory")
        shard = Shard(run_dir, {})
        if ca is not None:
            found = verify.verify(run_dir, ca, tsa_ca)
            shard.lines = found.lines
            if found.code != verify.EXIT_OK:
                why = "; ".join(ln.removeprefix("FAIL  ") for ln in found.lines if "FAIL" in ln)
                raise MergeError(f"{run_dir}: does not verify against {ca}: {why}", found.code)
            shard.verified = True
        try:
            shard.doc = results_json.read(run_dir)
        except (OSError, ValueError) as exc:
            raise MergeError(f"{run_dir}/results.json cannot be read: {exc}") from None
        version = shard.doc.get("schema_version")
        if version != results_json.SCHEMA_VERSION:
            raise MergeError(f"{run_dir}: results.json has schema version {version}, "
                             f"not {results_json.SCHEMA_VERSION}")  # fmt: skip
        shards.append(shard)
    check_alike(shards)
    return shards


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


def merged_doc(
    shards: list[Shard], run_id: str, signing_info: dict[str, Any] | None
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
    results = [Result(**{k: r[k] for k in ("host", "control", "title", "severity", "result",
                                            "message", "nodeid", "remediation")})
               for h in hosts.values() for r in h["controls"]]  # fmt: skip
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
        # The same hash a single run over every host gives (walguard.report.runinfo).
        "policy_sha256": hashlib.sha256(json.dumps(per_host, sort_keys=True).encode()).hexdigest(),
        "signing": signing_info,
        "shards": [s.record() for s in shards],
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


def copy_evidence(shard: Shard, out: Path) -> None:
    """The shard's evidence at the same paths (a probe host's, which every shard has, under the
    shard's run id)."""
    source = shard.dir / "evidence"
    if not source.is_dir():
        return
    for directory in sorted(p for p in source.iterdir() if p.is_dir()):
        if directory.name in shard.doc["hosts"]:
            shutil.copytree(directory, out / "evidence" / directory.name)
        else:
            shutil.copytree(directory, out / "evidence" / directory.name / shard.id)


def merge_junit(shards: list[Shard], out: Path) -> None:
    """One junit.xml holding every shard's test suite (named by its run id)."""
    merged = ET.Element("testsuites", {"name": "pytest tests"})
    for shard in shards:
        path = shard.dir / "junit.xml"
        if not path.is_file():
            continue
        root = ET.parse(path).getroot()
        for suite in [root] if root.tag == "testsuite" else root.findall("testsuite"):
            suite.set("name", f"{suite.get('name', 'pytest')} ({shard.id})")
            merged.append(suite)
    ET.ElementTree(merged).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)


def new_out(shards: list[Shard]) -> Path:
    """Beside the first shard, named as a run directory is (UTC start, random hex)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return shards[0].dir.resolve().parent / f"{stamp}-{secrets.token_hex(3)}"


def merge(
    run_dirs: list[Path],
    out: Path | None = None,
    *,
    ca: Path | None = None,
    tsa_ca: Path | None = None,
    signer: signing.Signer | None = None,
    tsa_url: str | None = None,
) -> tuple[Path, dict[str, Any], str | None]:
    """Writes the merged run; returns its directory, its results.json and why it could not be
    signed (None when it was, or when no signer was given)."""
    shards = read_shards(run_dirs, ca, tsa_ca)
    out = out or new_out(shards)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"{out} exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    info = signer.describe(tsa_url) if signer is not None else None
    doc = merged_doc(shards, out.name, info)
    for shard in shards:
        copy_evidence(shard, out)
        if shard.signed:
            kept = out / SHARDS_DIR / shard.id
            kept.mkdir(parents=True)
            for name in (manifest.MANIFEST, manifest.SIGNATURE, manifest.TIMESTAMP):
                if (shard.dir / name).is_file():
                    shutil.copy2(shard.dir / name, kept / name)
    merge_junit(shards, out)
    doc["run"]["finished"] = doc["run"]["finished"] or utc_now()
    results_json.write(doc, out)
    html.write(doc, out)
    if signer is None:
        return out, doc, None
    metadata = {**manifest_metadata(doc), "shards": doc["run"]["shards"]}
    try:
        sign_run(out, signer, metadata, tsa_url)
    except TimestampError as exc:
        return out, doc, f"the merged run is signed but has no timestamp: {exc}"
    except OSError as exc:
        return out, doc, f"the merged run could not be signed: {exc}"
    return out, doc, None


def command(args: Any) -> int:
    """`walguard merge`: prints what it merged and the merged gate; exits with the merged run's
    exit status (README: Exit codes), 4 when the shards cannot be merged, or `walguard verify`'s
    status when a shard does not verify against --ca."""
    opts = signing.SignOptions.resolve(
        key=args.sign_key, cert=args.sign_cert, chain=args.sign_chain, pkcs12=args.sign_pkcs12,
        password_file=args.sign_password_file, tsa_url=args.tsa_url,
    )  # fmt: skip
    key: signing.Signer | None = None
    try:
        if opts.wanted():
            key = signing.load(opts)
        elif args.tsa_url:
            raise MergeError("--tsa-url timestamps a signature: give a signing key too")
        out, doc, unsigned = merge(
            [Path(d) for d in args.run_dirs],
            Path(args.out) if args.out else None,
            ca=Path(args.ca) if args.ca else None,
            tsa_ca=Path(args.tsa_ca) if args.tsa_ca else None,
            signer=key,
            tsa_url=opts.tsa_url,
        )
    except signing.SignerError as exc:
        print(f"walguard: cannot sign the merged run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MergeError as exc:
        print(f"walguard: {exc}", file=sys.stderr)
        return exc.code
    for shard in doc["run"]["shards"]:
        verified = {True: ", signature verified", False: "", None: ""}[shard["verified"]]
        print(f"shard {shard['id']}: {shard['hosts']} hosts, exit status {shard['exit_status']}"
              f"{verified}")  # fmt: skip
    counts = ", ".join(f"{v} {k}" for k, v in sorted(doc["summary"]["by_result"].items()))
    print(f"merged {len(doc['hosts'])} hosts: {counts}")
    print(f"gate (--fail-on {doc['fail_on']}): exit status {doc['exit_status']}")
    print(f"report: {out}")
    if unsigned is not None:
        print(f"walguard: {unsigned}", file=sys.stderr)
        return EXIT_NOT_SIGNED
    return int(doc["exit_status"])
