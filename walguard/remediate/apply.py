"""Paired remediation: plan (the scripts' check mode), apply, then verify by collecting facts
again and judging the controls again. Nothing here runs unless --remediate is given.

Per host, all scripts run in one SSH command (walguard.remediate.script_run), each under its own
timeout, while the host's remediation lock (walguard.remediate.host_lock) is held from the first
script to the end of the re-check, so two walguard runs never remediate or verify a host at once.
A disruptive script (one that restarts PostgreSQL) runs only with --allow-restart (or its older
spelling --allow-disruptive), a change reference, and now inside one of the host's change windows
(walguard.remediate.authority): without the permission it is REFUSED and the FAIL stands; with
it but without the rest it is REMEDIATION REFUSED, saying which is missing. Either way before the
host is touched. The outcome recorded is what the re-check finds, never a guess from a script's
exit status: a script killed by its timeout after its fix took effect is REMEDIATED, and one that
exited 0 without fixing anything is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from walguard.control_scripts import Script
from walguard.controls import FUNCTIONS, SCRIPTS
from walguard.errors import FactUnavailable
from walguard.facts.collect import collect
from walguard.facts.transport import Connection
from walguard.inventory.load import Target
from walguard.judge import judge
from walguard.remediate.authority import Authority, RestartRecord
from walguard.remediate.host_lock import HostLock
from walguard.remediate.script_run import (
    REFUSED_RC,
    TIMED_OUT_RC,
    ScriptRun,
    facts_env,
    run_scripts,
)
from walguard.results import PASS, REMEDIATED, REMEDIATION_FAILED, REMEDIATION_REFUSED

PLANNED = "PLANNED"
REFUSED = "REFUSED"  # not run: disruptive and restarts not allowed
NOT_RUN = "NOT RUN"


@dataclass
class Outcome:
    """What remediation did for one control on one host (recorded with its result)."""

    control: str
    script: str
    mode: str
    status: str
    output: str = ""
    change_ref: str | None = None
    verified_result: str | None = None
    verified_message: str = ""
    duration_s: float | None = None
    exit_status: int | None = None
    timed_out: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    # A disruptive script's: on whose authority it ran (or would have), for the record.
    restart: RestartRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        restart = self.restart.as_dict() if self.restart is not None else {}
        return {
            "script": self.script,
            "mode": self.mode,
            "status": self.status,
            "output": self.output,
            "change_ref": self.change_ref,
            "verified_result": self.verified_result,
            "verified_message": self.verified_message,
            "duration_s": self.duration_s,
            "exit_status": self.exit_status,
            "timed_out": self.timed_out,
            **restart,
        }


def remediate_host(
    target: Target,
    failing: list[str],
    *,
    mode: str,
    authority: Authority,
    reachable: bool,
) -> list[Outcome]:
    """Plan or apply the paired scripts for a host's failing controls, then verify (apply)."""
    # Each declared script was found and its header checked when its control registered.
    available = {c: SCRIPTS[c] for c in failing if c in SCRIPTS}
    change_ref = authority.change_ref
    outcomes: list[Outcome] = []
    runnable: list[Script] = []
    # What a disruptive script's outcome records, whatever becomes of it.
    records = {c: authority.record(target) for c, s in available.items() if s.disruptive}
    # Whether a restart may happen is decided once per host, before it is touched (the clock is
    # read here), and only where one would.
    restart_refusal = None
    if mode == "apply" and authority.allow_restart and records:
        restart_refusal = authority.restart_refusal(target)
    for control in failing:
        script = available.get(control)
        if script is None:
            continue
        name = script.path.name
        restart = records.get(control)
        if not reachable:
            outcomes.append(
                Outcome(
                    control, name, mode, NOT_RUN, "host unreachable", change_ref, restart=restart
                )
            )
        elif mode == "apply" and script.disruptive and not authority.allow_restart:
            reason = f"disruptive ({script.changes}); rerun with --allow-restart to apply it"
            outcomes.append(
                Outcome(control, name, mode, REFUSED, reason, change_ref, restart=restart)
            )
        elif mode == "apply" and script.disruptive and restart_refusal is not None:
            outcomes.append(
                Outcome(
                    control, name, mode, REMEDIATION_REFUSED, restart_refusal, change_ref,
                    restart=restart,
                )
            )  # fmt: skip
        else:
            runnable.append(script)
    if not runnable:
        return outcomes
    conn = Connection(target)
    lock = HostLock(conn)
    try:
        try:
            conn.open()
            if mode == "apply":
                lock.acquire()
        except FactUnavailable as exc:
            return outcomes + [
                Outcome(
                    s.control, s.path.name, mode, REMEDIATION_FAILED, str(exc), change_ref,
                    restart=records.get(s.control),
                )
                for s in runnable
            ]  # fmt: skip
        # What the host is like now (under the lock, when applying): the scripts judge by it.
        found = facts_env(collect(target, conn=conn), target.policy)
        if mode == "plan":
            try:
                ran = run_scripts(conn, target, runnable, "check", change_ref, found)
            except FactUnavailable as exc:
                ran = {s.control: ScriptRun(-1, str(exc), None) for s in runnable}
            return outcomes + [
                Outcome(
                    s.control, s.path.name, mode, PLANNED, ran[s.control].output, change_ref,
                    restart=records.get(s.control),
                )
                for s in runnable
            ]  # fmt: skip
        applied = _apply_and_verify(conn, target, runnable, change_ref, found)
        return outcomes + [replace(o, restart=records.get(o.control)) for o in applied]
    finally:
        lock.release()
        conn.close()


def _apply_and_verify(
    conn: Connection,
    target: Target,
    runnable: list[Script],
    change_ref: str | None,
    found: dict[str, str],
) -> list[Outcome]:
    try:
        ran = run_scripts(conn, target, runnable, "apply", change_ref, found)
    except FactUnavailable as exc:
        # The command as a whole failed or was killed: what it changed is for the re-check to
        # find, not for us to guess.
        ran = {s.control: ScriptRun(-1, f"remediation command: {exc}", None) for s in runnable}
    fresh = collect(target, conn=conn)  # still under the lock
    outcomes = []
    for script in runnable:
        run = ran[script.control]
        verdict = judge(FUNCTIONS[script.control], fresh, target)
        timed_out = run.rc == TIMED_OUT_RC
        if run.rc == REFUSED_RC:
            status = REMEDIATION_REFUSED
        else:
            status = REMEDIATED if verdict.result == PASS else REMEDIATION_FAILED
        output = run.output
        if timed_out:
            limit = target.connect.remediation_timeout_s
            output = f"script timed out after {limit} s (walguard_remediation_timeout_s): {output}"
        elif run.rc not in (0, REFUSED_RC):
            output = f"script exit {run.rc}: {output}"
        outcomes.append(
            Outcome(
                script.control,
                script.path.name,
                "apply",
                status,
                output,
                change_ref,
                verdict.result,
                verdict.message,
                run.duration_s,
                run.rc,
                timed_out,
            )
        )
    return outcomes
