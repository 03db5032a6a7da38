"""Results: one per host and control, and the exit status a CI gate can use."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from walguard.controls import severity_rank
from walguard.exit_codes import Exit

PASS = "PASS"
FAIL = "FAIL"
ERROR = "ERROR"
NOT_APPLICABLE = "NOT APPLICABLE"
REMEDIATED = "REMEDIATED"
REMEDIATION_FAILED = "REMEDIATION FAILED"
# The script saw that its fix could make things worse and changed nothing: the failure stands.
REMEDIATION_REFUSED = "REMEDIATION REFUSED"
# A staged restart's gate after the restart failed and the host was put back as it ran before:
# nothing is fixed, and the failure counts as one (walguard.remediate.rollout).
ROLLED_BACK = "ROLLED BACK"
# An accepted risk (walguard.history.waivers): the failure stands in the report, with its waiver,
# and
# does not fail the gate.
WAIVED = "WAIVED"

# Exit codes: walguard.exit_codes holds the one table (pytest's own 4 and 5 among them).
EXIT_OK = int(Exit.OK)
EXIT_FAILED = int(Exit.FAILED)
EXIT_USAGE = int(Exit.USAGE)
EXIT_NO_CONTROLS = int(Exit.NO_CONTROLS)
EXIT_ERRORS = int(Exit.ERRORS)


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
    waiver: dict[str, Any] | None = field(default=None)

    def as_dict(self) -> dict[str, Any]:
        # Field by field, not dataclasses.asdict: this runs once per host and control (twice
        # under xdist), and asdict's recursive deep copy was a fifth of writing results.json at
        # 300 hosts. The two dicts are copied one level, as asdict would copy them.
        return {
            "host": self.host,
            "control": self.control,
            "title": self.title,
            "severity": self.severity,
            "result": self.result,
            "message": self.message,
            "nodeid": self.nodeid,
            "remediation": _copy(self.remediation),
            "waiver": _copy(self.waiver),
        }


def _copy(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else deepcopy(value)


# How bad a result is, for `--baseline`: a pair is worse than the baseline when it ranks higher.
_FAILED = (FAIL, REMEDIATION_FAILED, REMEDIATION_REFUSED, ROLLED_BACK)


def badness(result: str) -> int:
    if result in _FAILED:
        return 2
    return 1 if result == ERROR else 0


def exit_status(
    results: list[Result],
    fail_on: str,
    *,
    complete: bool = True,
    baseline: dict[tuple[str, str], str] | None = None,
) -> int:
    """The gate, over the complete set of (host, control) pairs the run meant to judge (pairs
    without a final result are already ERROR in `results`).

    5 when no control at or above fail_on was judged at all (an audit of nothing is never green);
    1 when any of those failed (or its remediation failed or was refused); 6 when none failed but
    some could not be evaluated (ERROR); and never 0 while any selected pair, of any severity,
    has no result (`complete` false). WAIVED never fails it.

    With a `baseline` ((host, control) -> result of an earlier run), only what is worse than
    there counts: a failure the baseline already had does not fail the gate, a new one does, and
    a host or control the baseline did not judge counts as new.
    """
    gated = [r for r in results if severity_rank(r.severity) <= severity_rank(fail_on)]
    if not gated:
        return EXIT_NO_CONTROLS
    if baseline is not None:
        gated = [
            r for r in gated if badness(r.result) > badness(baseline.get((r.host, r.control), PASS))
        ]
    # REMEDIATED was verified by a fresh check; a failed or refused remediation leaves a failure.
    if any(r.result in _FAILED for r in gated):
        return EXIT_FAILED
    if any(r.result == ERROR for r in gated) or not complete:
        return EXIT_ERRORS
    return EXIT_OK
