"""Writing a finished run: results.json, report.html from it, then (when asked) the signed
manifest. The pytest plugin calls this once, at the end of the run, on the controller. (The
evidence files are written as the run goes, by walguard.report.evidence_files.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from walguard.audit.run import AuditRun
from walguard.audit.runinfo import RunInfo
from walguard.audit.session import Signing
from walguard.exit_codes import Exit
from walguard.report import html, results_json
from walguard.results import Result
from walguard.signing.sign_run import manifest_metadata, sign_run
from walguard.signing.tsa import TimestampError

# The audit's verdicts were written but the run could not be signed (README: Exit codes).
EXIT_NOT_SIGNED = int(Exit.NOT_SIGNED)


def report_sections(answers: list[Any]) -> list[dict[str, str]]:
    """The hook implementations' (title, text) pairs, in order; anything else is kept as a
    section that says what was refused, never dropped in silence."""
    out = []
    for answer in answers:
        for entry in answer or ():
            if (
                isinstance(entry, tuple | list)
                and len(entry) == 2
                and all(isinstance(part, str) for part in entry)
            ):
                out.append({"title": entry[0], "text": entry[1]})
            else:
                shown = repr(entry)[:300]
                why = f"pytest_walguard_report_sections returned {shown}, not (title, text)"
                out.append({"title": "Refused report section", "text": why})
    return out


def write_run(
    run: AuditRun,
    results: list[Result],
    info: RunInfo,
    *,
    code: int,
    gate: int,
    signing: Signing | None,
    extra: dict[str, Any] | None = None,
    sections: Callable[[dict[str, Any]], list[Any]] | None = None,
) -> str | None:
    """Writes the run's files; returns why the run could not be signed, or None."""
    run_dir = run.run_dir
    if run_dir is None:  # a run without a directory (the plugin never asks for one) writes nothing
        return None
    doc = document(run, results, info, run_dir=run_dir, code=code, gate=gate, signing=signing,
                   extra=extra, sections=sections)  # fmt: skip
    return write_document(doc, run_dir, signing)


def document(
    run: AuditRun,
    results: list[Result],
    info: RunInfo,
    *,
    run_dir: Path,
    code: int,
    gate: int,
    signing: Signing | None,
    extra: dict[str, Any] | None = None,
    sections: Callable[[dict[str, Any]], list[Any]] | None = None,
) -> dict[str, Any]:
    """The run's results document, as results.json holds it (also what --metrics-file is made
    from)."""
    if signing is not None:
        info.signing = signing.signer.describe(signing.tsa_url)
    doc = results_json.build(run, results, info, code=code, gate=gate, run_dir=run_dir)
    # Drift, waivers and baseline (walguard.history.run_inputs): before the page and the signature.
    doc.update(extra or {})
    if sections is not None:
        # A bank's own sections (the pytest_walguard_report_sections hook), kept in results.json so
        # that a page written again from it (merge, sign) shows them too.
        added = report_sections(sections(doc))
        if added:
            doc["sections"] = added
    return doc


def write_document(doc: dict[str, Any], run_dir: Path, signing: Signing | None) -> str | None:
    """results.json and report.html from `doc`, then the signed manifest when signing; returns
    why the run could not be signed, or None."""
    results_json.write(doc, run_dir)
    html.write(doc, run_dir)
    if signing is None:
        return None
    try:
        sign_run(run_dir, signing.signer, manifest_metadata(doc), signing.tsa_url)
    except TimestampError as exc:
        return f"the run is signed but has no timestamp: {exc}"
    except OSError as exc:
        return f"the run could not be signed: {exc}"
    return None
