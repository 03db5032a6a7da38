"""The walguard section of the terminal summary: per host, then what failed, then the gate."""

from __future__ import annotations

from typing import Any

from walguard.results import (
    ERROR,
    FAIL,
    NOT_APPLICABLE,
    PASS,
    REMEDIATED,
    REMEDIATION_FAILED,
    REMEDIATION_REFUSED,
    WAIVED,
    Result,
)
from walguard.run import AuditRun

_ORDER = (PASS, FAIL, ERROR, WAIVED, NOT_APPLICABLE, REMEDIATED, REMEDIATION_FAILED,
          REMEDIATION_REFUSED)  # fmt: skip
_SHOWN = (FAIL, ERROR, REMEDIATED, REMEDIATION_FAILED, REMEDIATION_REFUSED)


def lines(run: AuditRun, results: list[Result], code: int) -> list[str]:
    out = [f"{len(run.expected)} of {run.total} controls selected"]
    judged_hosts = {r.host for r in results}
    for name, info in sorted(run.hosts.items()):
        if name not in judged_hosts:
            continue
        mine = [r for r in results if r.host == name]
        counts = {k: sum(1 for r in mine if r.result == k) for k in _ORDER}
        if info.reachable:
            state = "reachable"
        elif info.reachable is None:
            state = "NOT JUDGED"
        else:
            state = f"UNREACHABLE ({info.error})"
        summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        attempts = f", {len(info.ssh_attempts)} ssh attempts" if len(info.ssh_attempts) > 1 else ""
        out.append(f"{name}: {state}, {info.round_trips} round trips{attempts}; {summary}")
    for r in results:
        if r.result in _SHOWN:
            out.append(f"{r.result:5} {r.host} {r.control} ({r.severity}): {r.message}")
        if r.remediation:
            rem: dict[str, Any] = r.remediation
            detail = " | ".join(str(rem["output"]).splitlines()) or "-"
            out.append(
                f"      remediation {rem['script']} ({rem['mode']}): {rem['status']}: {detail}"
            )
    missing = run.missing()
    if missing:
        out.append(f"{len(missing)} selected controls have no result of their own (ERROR above)")
    out.append(f"gate (--fail-on {run.fail_on}): exit status {code}")
    return out
