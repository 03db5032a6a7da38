"""results.json: every expected (host, control) pair's final result, per host, with the run's
selection and gate."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from walguard import __version__
from walguard.results import Result
from walguard.run import AuditRun


def write(run: AuditRun, results: list[Result], code: int, run_dir: Path, *, gate: int) -> Path:
    """`code` is the process's exit status; `gate` what the complete set alone gives (they
    differ only when pytest itself ended with an interrupt, usage or internal error)."""
    hosts: dict[str, dict[str, Any]] = {}
    for target in run.targets:
        info = run.hosts[target.name].as_dict()
        info["controls"] = [r.as_dict() for r in results if r.host == target.name]
        hosts[target.name] = info
    doc = {
        "walguard": __version__,
        "run": run_dir.name,
        "finished": datetime.now(UTC).isoformat(),
        "fail_on": run.fail_on,
        "selected": len(run.expected),
        "total": run.total,
        "missing": [{"host": h, "control": c} for h, c in run.missing()],
        "exit_status": code,
        "gate": gate,
        "hosts": hosts,
    }
    path = run_dir / "results.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path
