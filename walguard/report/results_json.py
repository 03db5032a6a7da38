"""results.json: the run's machine-readable record, from which report.html is written.

Its schema is versioned (`schema_version`) and documented in results.schema.json beside this
module (and in reports/README.md). Every expected (host, control) pair's final result is in it,
per host, with the run's metadata, the controls' metadata, a summary and the evidence references
that stand behind each result.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from walguard.audit.run import AuditRun
from walguard.audit.runinfo import RunInfo, policy_of, policy_sha256, utc_now
from walguard.controls import REGISTRY, SEVERITIES, Control
from walguard.report.evidence import HostEvidence
from walguard.results import (
    ERROR,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    REMEDIATED,
    REMEDIATION_FAILED,
    REMEDIATION_REFUSED,
    ROLLED_BACK,
    Result,
)

SCHEMA_VERSION = 1
SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
RESULTS = (
    PASS, FAIL, ERROR, REMEDIATED, REMEDIATION_FAILED, REMEDIATION_REFUSED, ROLLED_BACK,
    NOT_APPLICABLE, "WAIVED",
)  # fmt: skip


def control_record(meta: Control) -> dict[str, Any]:
    return {
        "title": meta.title,
        "severity": meta.severity,
        "rationale": meta.rationale,
        "refs": list(meta.refs),
        "remediation": meta.remediation,
        "disruptive": meta.disruptive,
        "opt_in": meta.opt_in is not None,
    }


def summary(hosts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The numbers an auditor reads first: per host, per severity, what was remediated, which
    hosts could not be reached."""
    by_host: dict[str, dict[str, int]] = {}
    by_severity: dict[str, Counter[str]] = {s: Counter() for s in SEVERITIES}
    totals: Counter[str] = Counter()
    remediated: list[dict[str, str]] = []
    for name, info in hosts.items():
        counts: Counter[str] = Counter()
        for r in info["controls"]:
            counts[r["result"]] += 1
            by_severity.setdefault(r["severity"], Counter())[r["result"]] += 1
            if r["remediation"] and r["remediation"].get("mode") == "apply":
                remediated.append({"host": name, "control": r["control"], "result": r["result"]})
        totals.update(counts)
        by_host[name] = dict(counts)
    return {
        "hosts": len(hosts),
        "results": sum(totals.values()),
        "by_result": dict(totals),
        "by_host": by_host,
        "by_severity": {s: dict(c) for s, c in by_severity.items()},
        "remediated": remediated,
        "unreachable": sorted(
            n for n, i in hosts.items() if i["reachable"] is False and i["error"]
        ),
    }


def build(
    run: AuditRun,
    results: list[Result],
    info: RunInfo,
    *,
    code: int,
    gate: int,
    run_dir: Path,
) -> dict[str, Any]:
    """The document. `code` is the process's exit status; `gate` what the complete set alone
    gives (they differ only when pytest itself ended with an interrupt, usage or internal
    error)."""
    controls: dict[str, dict[str, Any]] = {}
    for meta in run.expected.values():
        controls[meta.id] = control_record(meta)
    by_host: dict[str, list[Result]] = {}
    for r in results:
        by_host.setdefault(r.host, []).append(r)
        if r.control not in controls and r.control in REGISTRY:
            controls[r.control] = control_record(REGISTRY[r.control])
    hosts: dict[str, dict[str, Any]] = {}
    for target in run.targets:
        host = run.hosts[target.name].as_dict()
        # A host that was never judged (no evidence, no results) says so rather than "reachable".
        evidence = HostEvidence.read(run_dir, target.name)
        policy = policy_of(target)
        host["reachable"] = run.hosts[target.name].reachable
        host["groups"] = list(target.groups)
        host["policy"] = policy
        host["policy_sha256"] = policy_sha256(policy)
        host["evidence"] = evidence.files
        host["controls"] = [
            {**r.as_dict(), "evidence": evidence.refs(r.control, excerpts=r.result != PASS)}
            for r in by_host.get(target.name, [])
        ]
        hosts[target.name] = host
    info.finished = info.finished or utc_now()
    return {
        "schema_version": SCHEMA_VERSION,
        "run": info.as_dict(),
        "fail_on": run.fail_on,
        "selected": len(run.expected),
        "total": run.total,
        "missing": [{"host": h, "control": c} for h, c in run.missing()],
        "exit_status": code,
        "gate": gate,
        "summary": summary(hosts),
        "controls": dict(sorted(controls.items())),
        "hosts": hosts,
        # What changed since the previous verified run (walguard.history.drift); the plugin fills
        # it in.
        "drift": None,
        # A staged restart (--allow-restart): its stages, gates, downtimes; absent without one.
        **({"rollout": run.rollout} if run.rollout is not None else {}),
    }


def write(doc: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / "results.json"
    # Readable in a pager and in a diff: one line for each of the document's keys, each host's
    # keys and each result, the rest of a value on its line. Each line is encoded by json's C
    # encoder (with an indent json uses its pure-Python one: 3x the CPU), and the file is
    # written a host at a time, never held whole in memory.
    with path.open("w", encoding="utf-8") as f:
        f.write("{")
        for i, (key, value) in enumerate(doc.items()):
            f.write(f"{',' if i else ''}\n {_dumps(key)}: ")
            if key == "hosts" and isinstance(value, dict) and value:
                f.write("{")
                for j, (name, host) in enumerate(value.items()):
                    f.write(f"{',' if j else ''}\n  {_dumps(name)}: {_lines(host, 2, 2)}")
                f.write("\n }")
            else:
                f.write(_lines(value, 1, 2))
        f.write("\n}\n")
    return path


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _lines(value: Any, depth: int, levels: int) -> str:
    """`value` with its first `levels` levels of objects one item a line (indented one space a
    level, starting at `depth`), and an array within them one item a line, each item compact
    (a result, a missing pair, a file)."""
    if levels == 0 or not isinstance(value, dict | list) or not value:
        return _dumps(value)
    pad = " " * (depth + 1)
    if isinstance(value, dict):
        items = [f"{pad}{_dumps(k)}: {_lines(v, depth + 1, levels - 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    items = [f"{pad}{_dumps(v)}" for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"


def read(run_dir: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    return doc
