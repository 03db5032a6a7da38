"""A run as an OSCAL Assessment Results document (NIST OSCAL 1.2.1, JSON), for GRC tools.

How walguard's run maps onto the model:

- `metadata`: the run's title, `last-modified` the run's end (so that two exports of one run
  are the same bytes), `version` walguard's, `oscal-version` the schema's.
- `import-ap`: `#UUID` of a back-matter resource that is walguard's assessment plan: the
  controls this run judged, the gate and the options, and results.json (which records them).
- one `result` for the run: its start and end, `reviewed-controls` naming every control judged
  (control-id lower case: `wg-arc-001`), each host as an inventory item and walguard as the tool
  of the assessment platform (the controller) in `local-definitions`.
- one `observation` for each host x control result: method TEST, the host as subject,
  walguard's verdict and severity as props, and `relevant-evidence` for each evidence file the
  result cites (`href` relative to the run directory: `evidence/HOST/FILE`) with its SHA-256 as
  a prop and a link to its back-matter resource.
- one `finding` for each host x control that did not PASS: target `objective-id` the control,
  `status.state` not-satisfied (FAIL, ERROR, WAIVED, REMEDIATION FAILED/REFUSED) or satisfied
  (REMEDIATED, and NOT APPLICABLE with implementation-status not-applicable).
- `back-matter`: results.json, report.html, every evidence file, and the signed `manifest`,
  `manifest.p7s` and `manifest.p7s.tsr` when there: each an `rlink` with its SHA-256.

Whether the run's signature was verified is said once, on the result (a prop and its remarks),
and never claimed unless this export verified it against a CA. UUIDs are version 5, from the run
id and the item, so an item keeps its UUID from one export of a run to the next. Text from the
run is untrusted: prop values are one line, and Markdown that could make a link, an image, HTML
or code of it is escaped.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from typing import Any

from walguard import __version__
from walguard.export.run_input import (
    EXIT_USAGE,
    REPORT,
    RESULTS,
    ExportError,
    RunInput,
)
from walguard.results import (
    ERROR,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    REMEDIATED,
    REMEDIATION_FAILED,
    REMEDIATION_REFUSED,
    ROLLED_BACK,
    WAIVED,
)
from walguard.signing import manifest

OSCAL_VERSION = "1.2.1"
# The namespace of walguard's own props (OSCAL: a prop whose name OSCAL does not define names
# its namespace), and of its UUIDs.
NS = "urn:walguard:oscal"
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, NS)
TOOL_UUID = str(uuid.uuid5(UUID_NAMESPACE, "walguard"))
# walguard's result -> the finding's status (state, reason). A waived failure is still a failure
# (its risk was accepted); a remediated one was re-checked and passed.
FINDING_STATUS: dict[str, tuple[str, str]] = {
    FAIL: ("not-satisfied", "fail"),
    ERROR: ("not-satisfied", "other"),
    WAIVED: ("not-satisfied", "fail"),
    REMEDIATION_FAILED: ("not-satisfied", "fail"),
    REMEDIATION_REFUSED: ("not-satisfied", "fail"),
    ROLLED_BACK: ("not-satisfied", "fail"),
    REMEDIATED: ("satisfied", "pass"),
    NOT_APPLICABLE: ("satisfied", "other"),
}
MEDIA_TYPES = {
    ".json": "application/json",
    ".txt": "text/plain",
    ".html": "text/html",
    manifest.MANIFEST: "text/plain",
    manifest.SIGNATURE: "application/pkcs7-signature",
    manifest.TIMESTAMP: "application/timestamp-reply",
}
SIGNED_FILES = {
    manifest.MANIFEST: "The run's manifest: its metadata and the SHA-256 of every other file",
    manifest.SIGNATURE: "The CMS signature (DER, detached) over the manifest",
    manifest.TIMESTAMP: "The RFC 3161 timestamp reply over manifest.p7s",
}
# Markdown that would make a link, an image, raw HTML, code or emphasis of untrusted text.
_MARKUP = re.compile(r"([\\`*\[\]<>])")


def uid(run_id: str, *parts: str) -> str:
    """The UUID of an item of the run: the same for the same run and item, every export."""
    return str(uuid.uuid5(UUID_NAMESPACE, "\x1f".join((run_id, *parts))))


def text(value: object) -> str:
    """Untrusted text as OSCAL markup (multiline): Markdown's active characters escaped."""
    return _MARKUP.sub(r"\\\1", str(value))


def line(value: object, fallback: str = "(none)") -> str:
    """Untrusted text as one line of OSCAL markup (markup-line: at least one character)."""
    return text(" ".join(str(value).split())) or fallback


def prop(name: str, value: object, *, walguard: bool = True) -> dict[str, str] | None:
    """A prop, or None when `value` is empty (an OSCAL string is at least one non-space
    character, on one line)."""
    shown = " ".join(str(value).split())
    if not shown:
        return None
    return {"name": name, **({"ns": NS} if walguard else {}), "value": shown}


def props(*items: dict[str, str] | None) -> list[dict[str, str]]:
    return [p for p in items if p is not None]


def _media_type(rel: str) -> str:
    name = rel.rsplit("/", 1)[-1]
    return MEDIA_TYPES.get(name) or MEDIA_TYPES.get("." + name.rsplit(".", 1)[-1], "text/plain")


def _rlink(run: RunInput, rel: str) -> dict[str, Any]:
    return {
        "href": rel,
        "media-type": _media_type(rel),
        "hashes": [{"algorithm": "SHA-256", "value": run.files[rel]}],
    }


def assessment_results(run: RunInput) -> dict[str, Any]:
    """The document: `{"assessment-results": ...}`."""
    doc = run.doc
    run_id = run.run_id
    info = doc["run"]
    controls = _control_ids(doc)
    if not controls:
        raise ExportError(f"run {run_id} has no results: nothing to export", EXIT_USAGE)
    ap_uuid = uid(run_id, "assessment-plan")
    observations, findings = _observations_and_findings(run)
    result: dict[str, Any] = {
        "uuid": uid(run_id, "result"),
        "title": line(f"walguard audit {run_id}"),
        "description": text(_description(doc, len(controls))),
        "start": info["started"],
        "end": info["finished"],
        "props": _result_props(run),
        "local-definitions": _local_definitions(run),
        "reviewed-controls": {
            "description": "The walguard controls this run judged (walguard controls lists "
            "them with their references).",
            "control-selections": [
                {"include-controls": [{"control-id": c.lower()} for c in controls]}
            ],
        },
        **({"observations": observations} if observations else {}),
        **({"findings": findings} if findings else {}),
        "remarks": _signature_remarks(run),
    }
    return {
        "assessment-results": {
            "uuid": uid(run_id, "assessment-results"),
            "metadata": {
                "title": line(f"walguard assessment results: run {run_id}"),
                "last-modified": info["finished"],
                "version": __version__,
                "oscal-version": OSCAL_VERSION,
                "props": props(prop("run-id", run_id)),
            },
            "import-ap": {
                "href": f"#{ap_uuid}",
                "remarks": "walguard's assessment plan is the controls it ran, recorded in the "
                "run's results.json: the back-matter resource this points at names them.",
            },
            "results": [result],
            "back-matter": {"resources": _resources(run, controls, ap_uuid)},
        }
    }


def _control_ids(doc: dict[str, Any]) -> list[str]:
    judged = {r["control"] for host in doc["hosts"].values() for r in host["controls"]}
    return sorted(judged | set(doc["controls"]))


def _description(doc: dict[str, Any], controls: int) -> str:
    counts = Counter(r["result"] for h in doc["hosts"].values() for r in h["controls"])
    shown = ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "no results"
    return (
        f"walguard audited {len(doc['hosts'])} PostgreSQL hosts against {controls} controls "
        f"of point-in-time recovery: {shown}. The gate (--fail-on {doc['fail_on']}) gave exit "
        f"status {doc['gate']}."
    )


def _signature_state(run: RunInput) -> str:
    if run.signature.verified:
        return "verified"
    return "not-verified" if run.signature.signed else "unsigned"


def _signature_remarks(run: RunInput) -> str:
    if run.signature.verified:
        return (
            "The run's signature (manifest.p7s over the manifest) and every file of the run "
            "were verified against the CA whose PEM file has SHA-256 "
            f"{run.signature.ca_sha256} (walguard export --ca) before this document was "
            "written; every SHA-256 here is the one the signed manifest lists."
        )
    if run.signature.signed:
        return (
            "The run is signed (manifest and manifest.p7s, in the back-matter), but this export "
            "did NOT verify its signature (no --ca was given): check it with "
            "`walguard verify RUN_DIR --ca CA.pem`. Each SHA-256 here was computed from the "
            "file and matches the run's manifest."
        )
    return (
        "The run is not signed and its integrity was NOT verified: nothing vouches for its "
        "files beyond the SHA-256 of each, computed by this export."
    )


def _result_props(run: RunInput) -> list[dict[str, str]]:
    doc, info = run.doc, run.doc["run"]
    walguard = info["walguard"]
    return props(
        prop("run-id", run.run_id),
        prop("signature", _signature_state(run)),
        prop("signature-ca-sha256", run.signature.ca_sha256 or ""),
        prop("operator", info["operator"]),
        prop("controller", info["controller"]),
        prop("inventory-sha256", info["inventory"]["sha256"]),
        prop("policy-sha256", info["policy_sha256"]),
        prop("fail-on", doc["fail_on"]),
        prop("remediate", info["remediate"] or ""),
        prop("change-ref", info["change_ref"] or ""),
        prop("exit-status", doc["exit_status"]),
        prop("gate", doc["gate"]),
        prop("walguard-version", walguard["version"]),
        prop("walguard-commit", walguard["commit"] or ""),
    )


def _local_definitions(run: RunInput) -> dict[str, Any]:
    info = run.doc["run"]
    items = []
    for name, host in run.doc["hosts"].items():
        reachable = {True: "true", False: "false", None: "not contacted"}[host["reachable"]]
        items.append({
            "uuid": uid(run.run_id, "host", name),
            "description": text(f"PostgreSQL host {name} ({host['address']}), as the "
                                "inventory names it"),
            "props": props(
                prop("host", name), prop("address", host["address"]),
                prop("reachable", reachable), *(prop("group", g) for g in host["groups"]),
                prop("policy-sha256", host["policy_sha256"]),
            ),
        })  # fmt: skip
    version = info["walguard"]["version"]
    return {
        **({"inventory-items": items} if items else {}),
        "assessment-assets": {
            "components": [
                {
                    "uuid": TOOL_UUID,
                    "type": "software",
                    "title": "walguard",
                    "description": "walguard: compliance-as-code for PostgreSQL point-in-time "
                    "recovery; its controls are pytest tests run over SSH.",
                    "props": props(prop("version", version)),
                    "status": {"state": "operational"},
                }
            ],
            "assessment-platforms": [
                {
                    "uuid": uid(run.run_id, "platform"),
                    "title": line(f"walguard {version} on {info['controller']}"),
                    "uses-components": [{"component-uuid": TOOL_UUID}],
                }
            ],
        },
    }


def _evidence_text(ref: dict[str, Any]) -> str:
    where = []
    if ref["section"]:
        where.append(f"collector section {ref['section']}")
    if ref["lines"]:
        where.append(f"lines {ref['lines'][0]}-{ref['lines'][1]}")
    if ref["keys"]:
        where.append("keys " + ", ".join(ref["keys"]))
    return f"{', '.join(where)} in {ref['file']}" if where else f"the whole of {ref['file']}"


def _relevant_evidence(run: RunInput, record: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for ref in record["evidence"]:
        rel, said = ref["file"], _evidence_text(ref)
        if (rel, said) in seen:
            continue
        seen.add((rel, said))
        out.append({
            "href": rel,
            "description": text(said),
            "props": props(prop("sha256", run.files[rel])),
            "links": [{"href": f"#{uid(run.run_id, 'file', rel)}", "rel": "reference"}],
        })  # fmt: skip
    return out


def _verdict_text(record: dict[str, Any]) -> str:
    """What walguard found, in words: its message, and what became of a failure."""
    said = record["message"].strip() or f"{record['result'].capitalize()} (no message)."
    remedy, waiver = record["remediation"], record.get("waiver")
    if record["result"] == WAIVED and waiver:
        said += (
            f"\n\nWaived (risk accepted) until {waiver['expires']}, approved by "
            f"{waiver['approver']}, ticket {waiver['ticket']}: {waiver['reason']}"
        )
    if remedy:
        said += f"\n\nRemediation {remedy['script']} ({remedy['mode']}): {remedy['status']}"
        if remedy.get("verified_result"):
            said += f"; re-check: {remedy['verified_result']}"
    return said


def _observations_and_findings(run: RunInput) -> tuple[list[dict[str, Any]], list[Any]]:
    run_id, finished = run.run_id, run.doc["run"]["finished"]
    observations: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    origins = [{"actors": [{"type": "tool", "actor-uuid": TOOL_UUID}]}]
    for name, host in run.doc["hosts"].items():
        collected = (host.get("collection") or {}).get("finished") or finished
        subject = {"subject-uuid": uid(run_id, "host", name), "type": "inventory-item",
                   "title": line(name)}  # fmt: skip
        for record in host["controls"]:
            control, verdict = record["control"], record["result"]
            seen = uid(run_id, "observation", name, control)
            evidence = _relevant_evidence(run, record)
            verdict_props = props(
                prop("host", name), prop("control-id", control), prop("result", verdict),
                prop("severity", record["severity"]),
            )  # fmt: skip
            observations.append({
                "uuid": seen,
                "title": line(f"{control} on {name}: {verdict}"),
                "description": text(f"{record['title']}\n\n{_verdict_text(record)}"),
                "props": verdict_props,
                "methods": ["TEST"],
                "types": ["control-objective"],
                "origins": origins,
                "subjects": [subject],
                **({"relevant-evidence": evidence} if evidence else {}),
                "collected": collected,
            })  # fmt: skip
            if verdict == PASS:
                continue
            state, reason = FINDING_STATUS.get(verdict, ("not-satisfied", "other"))
            target: dict[str, Any] = {
                "type": "objective-id",
                "target-id": control.lower(),
                "title": line(record["title"]),
                "status": {"state": state, "reason": reason},
            }
            if verdict == NOT_APPLICABLE:
                target["implementation-status"] = {"state": "not-applicable"}
            findings.append({
                "uuid": uid(run_id, "finding", name, control),
                "title": line(f"{control} on {name}: {verdict}"),
                "description": text(_verdict_text(record)),
                "props": verdict_props,
                "origins": origins,
                "target": target,
                "related-observations": [{"observation-uuid": seen}],
            })  # fmt: skip
    return observations, findings


def _resources(run: RunInput, controls: list[str], ap_uuid: str) -> list[dict[str, Any]]:
    doc, run_id = run.doc, run.run_id
    listed = []
    for control in controls:
        meta = doc["controls"].get(control)
        if meta is None:
            listed.append(f"- {control}")
            continue
        refs = f" ({'; '.join(meta['refs'])})" if meta["refs"] else ""
        listed.append(f"- {control} ({meta['severity']}): {' '.join(meta['title'].split())}"
                      f"{refs}")  # fmt: skip
    info = doc["run"]
    plan = {
        "uuid": ap_uuid,
        "title": line(f"walguard assessment plan of run {run_id}"),
        "description": text(
            f"walguard judged these {len(controls)} controls on each of the "
            f"{len(doc['hosts'])} hosts of its inventory, by test (SSH, read-only unless "
            "remediation was asked for); the gate fails at --fail-on "
            f"{doc['fail_on']} and above.\n\n" + "\n".join(listed)
        ),
        "props": props(
            prop("fail-on", doc["fail_on"]),
            prop("selected", doc["selected"]),
            prop("total", doc["total"]),
            prop("remediate", info["remediate"] or "no"),
            prop("active-probe", str(info["active_probe"]).lower()),
            prop("restore-drill", str(info.get("restore_drill", False)).lower()),
        ),
        "rlinks": [_rlink(run, RESULTS)],
    }
    resources = [plan, _file(run, RESULTS, "The run's results.json: every result, its "
                             "evidence references and the run's metadata")]  # fmt: skip
    if REPORT in run.files:
        resources.append(_file(run, REPORT, "The run's report.html, for auditors"))
    for name, said in SIGNED_FILES.items():
        if name in run.files:
            resources.append(_file(run, name, said, prop("signature", _signature_state(run))))
    for rel in run.evidence:
        resources.append(_file(run, rel, f"Evidence file {rel}"))
    return resources


def _file(
    run: RunInput, rel: str, description: str, *extra: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "uuid": uid(run.run_id, "file", rel),
        "title": line(rel),
        "description": text(description),
        "props": props(prop("sha256", run.files[rel]), *extra),
        "rlinks": [_rlink(run, rel)],
    }
