"""Results: one per host and control, and the exit status a CI gate can use."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from walguard.controls import severity_rank

PASS = "PASS"
FAIL = "FAIL"
ERROR = "ERROR"
NOT_APPLICABLE = "NOT APPLICABLE"
REMEDIATED = "REMEDIATED"
REMEDIATION_FAILED = "REMEDIATION FAILED"

# Exit codes (README): pytest's own 4 (usage) and 5 (no tests) are kept as they are.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 4
EXIT_NO_CONTROLS = 5
EXIT_ERRORS = 6


@dataclass(frozen=True)
class Result:
    host: str
    control: str
    title: str
    severity: str
    result: str
    message: str
    nodeid: str
    remediation: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def exit_status(results: list[Result], fail_on: str) -> int:
    """0 when every control at or above fail_on passed (or is not applicable); 1 when any of them
    failed; 6 when none failed but some could not be evaluated (ERROR, e.g. unreachable)."""
    if not results:
        return EXIT_NO_CONTROLS
    gated = [r for r in results if severity_rank(r.severity) <= severity_rank(fail_on)]
    # REMEDIATED was verified by a fresh check; a failed remediation leaves a failure.
    if any(r.result in (FAIL, REMEDIATION_FAILED) for r in gated):
        return EXIT_FAILED
    if any(r.result == ERROR for r in gated):
        return EXIT_ERRORS
    return EXIT_OK
