"""Remediating the run's hosts: each host's failed controls with their paired scripts
(walguard.remediate.apply), and, with --allow-restart, the hosts whose fixes restart PostgreSQL
as one staged rollout (walguard.remediate.rollout) instead of one after the other with nothing
between them. Every outcome is recorded with its result: REMEDIATED, REMEDIATION FAILED,
REMEDIATION REFUSED and ROLLED BACK replace FAIL; a plan, a script not allowed, a host skipped
by a gate or not reached by a stopped rollout, or an unreachable host leave the FAIL standing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from walguard.audit.run import AuditRun
from walguard.controls import SCRIPTS
from walguard.inventory.load import Target
from walguard.remediate.apply import Outcome, remediate_host
from walguard.remediate.authority import Authority
from walguard.remediate.rollout import restarts, run_rollout
from walguard.results import (
    FAIL,
    REMEDIATED,
    REMEDIATION_FAILED,
    REMEDIATION_REFUSED,
    ROLLED_BACK,
)

FINAL = (REMEDIATED, REMEDIATION_FAILED, REMEDIATION_REFUSED, ROLLED_BACK)


def remediate_run(
    run: AuditRun,
    mode: str,
    *,
    authority: Authority,
    say: Callable[[str], object],
    batch: int = 1,
    archive_wait_s: float = 30,
) -> None:
    """Plan or apply every host's remediation; with --allow-restart the hosts whose fixes
    restart PostgreSQL go through the staged rollout, whose plan and record go into the run."""
    failing: dict[str, list[str]] = {}
    for target in run.targets:
        found = sorted(
            c for (h, c), r in run.results.items() if h == target.name and r.result == FAIL
        )
        if found:
            failing[target.name] = found
    staged = [
        t
        for t in run.targets
        if authority.allow_restart
        and t.name in failing
        and run.hosts[t.name].reachable
        and restarts(t, failing[t.name])
    ]
    for target in run.targets:
        if target.name not in failing or target in staged:
            continue
        say(f"walguard: remediation ({mode}) on {target.name}: {', '.join(failing[target.name])}")
        _record(run, target, _guarded(target, failing[target.name], mode, authority, run))
    if not staged:
        return
    rollout, outcomes = run_rollout(
        run, staged, failing, mode=mode, authority=authority, batch=batch,
        archive_wait_s=archive_wait_s, say=say,
    )  # fmt: skip
    run.rollout = rollout.as_dict()
    for target in staged:
        _record(run, target, outcomes.get(target.name, []))


def _guarded(
    target: Target, failing: list[str], mode: str, authority: Authority, run: AuditRun
) -> list[Outcome]:
    try:
        return remediate_host(
            target, failing, mode=mode, authority=authority,
            reachable=bool(run.hosts[target.name].reachable),
        )  # fmt: skip
    except Exception as exc:  # one host's surprise is its own outcome, never the run's end
        reason = " ".join(f"remediation stopped: {type(exc).__name__}: {exc}".split())
        outcomes = [
            Outcome(c, f"{c}.sh", mode, REMEDIATION_FAILED, reason, authority.change_ref)
            for c in failing
        ]
        return [_with_record(o, authority, target) for o in outcomes]


def _record(run: AuditRun, target: Target, outcomes: list[Outcome]) -> None:
    for o in outcomes:
        result = o.status if o.status in FINAL else FAIL
        run.replace_result((target.name, o.control), result=result, remediation=o.as_dict())


def _with_record(outcome: Outcome, authority: Authority, target: Target) -> Outcome:
    """A disruptive script's outcome with its record, where remediation stopped unexpectedly."""
    script = SCRIPTS.get(outcome.control)
    if script is None or not script.disruptive:
        return outcome
    try:
        return replace(outcome, restart=authority.record(target))
    except Exception:  # the record is the surprise: the outcome stands without it
        return outcome
