"""A staged restart (`--remediate=apply --allow-restart`): the hosts whose fixes restart PostgreSQL
are taken one stage at a time (walguard.remediate.rollout_plan), each host through its gates
(walguard.remediate.gates):

1. right before it: restarts allowed for it now (change reference, change window:
   walguard.remediate.authority), else its restart is REMEDIATION REFUSED and the rollout goes on;
2. the gates before: nothing critical in its audit but what the fixes mend, no backup running,
   standbys caught up, the archiver's backlog and free space within the policy; a failed gate
   skips the host (SKIPPED, the FAIL stands) and the rollout goes on;
3. the way back recorded (postgresql.auto.conf and the restart-only settings it runs with);
4. its scripts, with a watcher measuring the downtime (first refused to first accepted);
5. the gates after: connections accepted within walguard_restart_timeout_s, nothing pending a
   restart, a WAL switch archived, its standbys streaming again, and its whole audit without a
   FAIL it did not have before. A failed gate rolls the host back (ROLLED BACK, never counted as
   fixed) and stops the rollout: every host after it is NOT REMEDIATED, "rollout stopped at HOST:
   GATE".

A plan (`--remediate=plan`) shows the stages and the gates without touching a host beyond
reading its role. Hosts of one stage go side by side; the next stage starts when all are done.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from walguard.audit.run import AuditRun
from walguard.control_scripts import Script
from walguard.controls import FUNCTIONS, REGISTRY, SCRIPTS
from walguard.errors import FactUnavailable
from walguard.facts.collect import collect
from walguard.facts.transport import Connection
from walguard.inventory.load import Target
from walguard.judge import judge
from walguard.remediate.apply import Outcome, remediate_host
from walguard.remediate.authority import Authority
from walguard.remediate.gates import (
    Gate,
    Roles,
    downtime,
    gate_command,
    gate_env,
    judge_after,
    judge_before,
    read_roles,
    record_saved,
    run_gate,
)
from walguard.remediate.host_lock import HostLock
from walguard.remediate.rollout_plan import Stage, stages
from walguard.remediate.script_run import WATCH_SECTION, ScriptRun, facts_env, run_scripts
from walguard.results import (
    ERROR,
    FAIL,
    PASS,
    REMEDIATED,
    REMEDIATION_FAILED,
    ROLLED_BACK,
)

SKIPPED = "SKIPPED"  # a gate before the restart failed: not run, the FAIL stands
NOT_REMEDIATED = "NOT REMEDIATED"  # the rollout stopped before this host: the FAIL stands
SAVE_ROOT = "/var/lib/walguard/rollback"
BEFORE_GATES = (
    "nothing critical but what the fixes mend",
    "no backup running",
    "standbys caught up",
    "archiver backlog",
    "free space",
)
AFTER_GATES = (
    "accepts connections",
    "nothing pending a restart",
    "archiving works",
    "standbys streaming again",
    "no new FAIL in its audit",
)


def restarts(target: Target, failing: list[str]) -> bool:
    """Whether the host's fixes include a script that restarts PostgreSQL."""
    return any(c in SCRIPTS and SCRIPTS[c].disruptive for c in failing)


@dataclass
class HostRollout:
    """What the rollout did on one host, for results.json and the report."""

    host: str
    stage: int
    # planned, refused, skipped, restarted, rolled back, rollback failed, failed (a surprise
    # stopped it), not reached
    status: str = "planned"
    gates_before: list[Gate] = field(default_factory=list)
    gates_after: list[Gate] = field(default_factory=list)
    downtime_s: float | None = None
    way_back: str = ""
    rollback: str = ""
    activates: tuple[str, ...] = ()  # settings already pending a restart before it
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "stage": self.stage,
            "status": self.status,
            "gates_before": [g.as_dict() for g in self.gates_before],
            "gates_after": [g.as_dict() for g in self.gates_after],
            "downtime_s": self.downtime_s,
            "way_back": self.way_back,
            "rollback": self.rollback,
            "activates": list(self.activates),
            "reason": self.reason,
        }


@dataclass
class Rollout:
    stages: list[Stage]
    hosts: dict[str, HostRollout]
    batch: int
    stopped_at: str | None = None
    roles: dict[str, Roles | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def role(name: str) -> str:
            found = self.roles.get(name)
            return "unknown" if found is None else ("standby" if found.standby else "primary")

        return {
            "batch": self.batch,
            "stages": [s.as_dict() for s in self.stages],
            "gates_before": list(BEFORE_GATES),
            "gates_after": list(AFTER_GATES),
            "hosts": {n: {**h.as_dict(), "role": role(n)} for n, h in self.hosts.items()},
            "stopped_at": self.stopped_at,
        }


def _roles(target: Target) -> Roles | None:
    conn = Connection(target)
    try:
        conn.open()
        return read_roles(run_gate(conn, target, "roles"))
    except FactUnavailable:
        return None
    finally:
        conn.close()


def plan_rollout(targets: list[Target], batch: int) -> Rollout:
    """The stages, from each host's role read now (one round trip per host)."""
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(targets)))) as pool:
        found = dict(zip((t.name for t in targets), pool.map(_roles, targets), strict=True))
    planned = stages(targets, found, batch)
    hosts = {n: HostRollout(n, s.number) for s in planned for n in s.hosts}
    return Rollout(planned, hosts, batch, roles=found)


# What a fix in an area mends besides its own control: archiving that is off or broken also
# fails the archiver's activity (ACT) and restorability (RST) controls, which the fix mends too.
CONSEQUENCES = {"ARC": ("ACT", "RST"), "DIR": ("ACT", "RST")}


def _audit_gate(run: AuditRun, host: str, fixing: set[str]) -> Gate:
    """Nothing critical in the host's audit (FAIL, or ERROR: not known to be fine) but what its
    fixes mend: their controls' areas and those areas' consequences."""
    areas = {c.split("-")[1] for c in fixing}
    mended = areas.union(*(CONSEQUENCES.get(a, ()) for a in areas))
    bad = sorted(
        f"{c} {r.result}"
        for (h, c), r in run.results.items()
        if h == host
        and c.split("-")[1] not in mended
        and r.severity == "critical"
        and r.result in (FAIL, ERROR)
    )
    said = ", ".join(bad) or (
        f"no critical FAIL or ERROR outside {', '.join(sorted(mended))} (what the fixes mend)"
    )
    return Gate(BEFORE_GATES[0], not bad, said)


def _new_fails(run: AuditRun, target: Target, fresh: Any, fixing: set[str]) -> Gate:
    """The host's audit again, on facts read after the restart: a control that FAILs now and
    did not before (the controls this run judged, but the opt-in ones: a drill, a probe)."""
    new = []
    for (h, c), before in sorted(run.results.items()):
        meta = REGISTRY.get(c)
        # An opt-in control (the restore drill, the active probe) needs more than facts.
        if h != target.name or c not in FUNCTIONS or meta is None or meta.opt_in is not None:
            continue
        now = judge(FUNCTIONS[c], fresh, target)
        if now.result == FAIL and before.result != FAIL and c not in fixing:
            new.append(f"{c}: {now.message}")
    said = "; ".join(new)[:600] or "no control FAILs that did not before"
    return Gate(AFTER_GATES[4], not new, said)


def _outcomes(
    scripts: list[Script], status: str, output: str, authority: Authority, target: Target
) -> list[Outcome]:
    return [
        Outcome(
            s.control, s.path.name, "apply", status, output, authority.change_ref,
            restart=authority.record(target) if s.disruptive else None,
        )
        for s in scripts
    ]  # fmt: skip


def restart_host(
    run: AuditRun,
    target: Target,
    failing: list[str],
    record: HostRollout,
    authority: Authority,
    archive_wait_s: float,
) -> list[Outcome]:
    """One host of the rollout: its gates, its scripts, its gates after, its way back."""
    scripts = [SCRIPTS[c] for c in failing if c in SCRIPTS]
    fixing = {s.control for s in scripts}
    refusal = authority.restart_refusal(target) if authority.allow_restart else "not allowed"
    if refusal is not None:
        record.status, record.reason = "refused", refusal
        # The fixes that restart nothing still run; the restart is refused (apply decides).
        return remediate_host(target, failing, mode="apply", authority=authority, reachable=True)
    conn = Connection(target)
    lock = HostLock(conn)
    try:
        try:
            conn.open()
            lock.acquire()
        except FactUnavailable as exc:
            record.status, record.reason = "skipped", f"not reached: {exc}"
            return _outcomes(scripts, SKIPPED, f"skipped: {exc}", authority, target)
        policy = target.policy
        try:
            before, standbys, pending = judge_before(
                run_gate(conn, target, "before"),
                max_lag_s=policy.restart_max_lag_s,
                backlog_max=policy.ready_backlog_max,
                min_free_pct=policy.restart_min_free_pct,
            )
        except FactUnavailable as exc:
            before, standbys, pending = [Gate("host read", False, str(exc))], 0, ()
        record.gates_before = [_audit_gate(run, target.name, fixing), *before]
        record.activates = pending
        failed = next((g for g in record.gates_before if not g.ok), None)
        if failed is not None:
            record.status, record.reason = "skipped", f"{failed.name}: {failed.said}"
            why = f"skipped by the gate before the restart: {record.reason}"
            return _outcomes(scripts, SKIPPED, why, authority, target)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        save_dir = f"{SAVE_ROOT}/{stamp}-{target.name}"
        try:
            saved, said = record_saved(run_gate(conn, target, "record", save_dir=save_dir))
        except FactUnavailable as exc:
            saved, said = False, str(exc)
        record.way_back = said
        if not saved:
            record.status, record.reason = "skipped", f"no way back: {said}"
            return _outcomes(scripts, SKIPPED, f"skipped: {record.reason}", authority, target)
        found = facts_env(collect(target, conn=conn), policy)
        watched: dict[str, Any] = {}
        watcher = gate_command(gate_env(target, "watch", "-"))
        try:
            ran = run_scripts(
                conn, target, scripts, "apply", authority.change_ref, found,
                watcher=watcher, watched=watched,
            )  # fmt: skip
        except FactUnavailable as exc:
            ran = {s.control: ScriptRun(-1, f"remediation command: {exc}", None) for s in scripts}
        record.downtime_s = downtime(watched.get(WATCH_SECTION))
        try:
            after = judge_after(
                run_gate(
                    conn,
                    target,
                    "after",
                    standbys_before=standbys,
                    archive_wait_s=archive_wait_s,
                )
            )
        except FactUnavailable as exc:
            after = [Gate(AFTER_GATES[0], False, str(exc))]
        fresh = collect(target, conn=conn)
        if after[0].ok:
            after.append(_new_fails(run, target, fresh, fixing))
        else:  # a server that does not answer fails every control: nothing to compare
            after.append(Gate(AFTER_GATES[4], False, "not checked: the server does not answer"))
        record.gates_after = after
        failed = next((g for g in after if not g.ok), None)
        if failed is None:
            record.status = "restarted"
            return _verified(scripts, ran, fresh, target, authority)
        record.reason = f"{failed.name}: {failed.said}"
        try:
            back = run_gate(conn, target, "rollback", save_dir=save_dir).get("rollback")
        except FactUnavailable as exc:
            back = None
            record.rollback = f"the rollback did not run: {exc}"
        if back is not None:
            record.rollback = " ".join(back.output.split())[:500]
        if back is not None and back.rc == 0:
            record.status = "rolled back"
            why = f"rolled back after the gate {record.reason}; {record.rollback}"
            return _outcomes(scripts, ROLLED_BACK, why, authority, target)
        record.status = "rollback failed"
        why = f"the gate {record.reason} failed and the rollback failed too: {record.rollback}"
        return _outcomes(scripts, REMEDIATION_FAILED, why, authority, target)
    finally:
        lock.release()
        conn.close()


def _guarded(
    run: AuditRun,
    target: Target,
    failing: list[str],
    record: HostRollout,
    authority: Authority,
    archive_wait_s: float,
) -> list[Outcome]:
    """restart_host, whose surprise is its host's REMEDIATION FAILED and stops the rollout
    (what it left the host like is unknown), never the run's end."""
    try:
        return restart_host(run, target, failing, record, authority, archive_wait_s)
    except Exception as exc:
        reason = " ".join(f"remediation stopped: {type(exc).__name__}: {exc}".split())
        record.status, record.reason = "failed", reason
        scripts = [SCRIPTS[c] for c in failing if c in SCRIPTS]
        return _outcomes(scripts, REMEDIATION_FAILED, reason, authority, target)


def _verified(
    scripts: list[Script], ran: dict[str, ScriptRun], fresh: Any, target: Target,
    authority: Authority,
) -> list[Outcome]:  # fmt: skip
    outcomes = []
    for s in scripts:
        verdict = judge(FUNCTIONS[s.control], fresh, target)
        status = REMEDIATED if verdict.result == PASS else REMEDIATION_FAILED
        run = ran[s.control]
        outcomes.append(
            Outcome(
                s.control, s.path.name, "apply", status, run.output, authority.change_ref,
                verdict.result, verdict.message, run.duration_s, run.rc,
                restart=authority.record(target) if s.disruptive else None,
            )
        )  # fmt: skip
    return outcomes


def run_rollout(
    run: AuditRun,
    targets: list[Target],
    failing: dict[str, list[str]],
    *,
    mode: str,
    authority: Authority,
    batch: int,
    archive_wait_s: float,
    say: Callable[[str], object],
) -> tuple[Rollout, dict[str, list[Outcome]]]:
    """Plan (mode plan) or carry out the rollout over `targets`, whose failing controls are
    `failing`; each host's outcomes."""
    rollout = plan_rollout(targets, batch)
    order = " | ".join(", ".join(s.hosts) for s in rollout.stages)
    say(f"walguard: staged restart of {len(targets)} host(s), stages: {order}")
    by_name = {t.name: t for t in targets}
    outcomes: dict[str, list[Outcome]] = {}
    if mode != "apply":
        for t in targets:
            outcomes[t.name] = remediate_host(
                t, failing[t.name], mode=mode, authority=authority, reachable=True
            )
        return rollout, outcomes
    for stage in rollout.stages:
        if rollout.stopped_at is not None:
            for name in stage.hosts:
                record = rollout.hosts[name]
                record.status = "not reached"
                record.reason = f"rollout stopped at {rollout.stopped_at}"
                scripts = [SCRIPTS[c] for c in failing[name] if c in SCRIPTS]
                outcomes[name] = _outcomes(
                    scripts, NOT_REMEDIATED, record.reason, authority, by_name[name]
                )
            continue
        say(f"walguard: stage {stage.number}: {', '.join(stage.hosts)}")
        with ThreadPoolExecutor(max_workers=len(stage.hosts)) as pool:
            done = pool.map(
                lambda n: _guarded(
                    run, by_name[n], failing[n], rollout.hosts[n], authority, archive_wait_s
                ),
                stage.hosts,
            )
            outcomes.update(zip(stage.hosts, done, strict=True))
        for name in stage.hosts:
            record = rollout.hosts[name]
            say(f"walguard: {name}: {record.status}{': ' + record.reason if record.reason else ''}")
            stops = ("rolled back", "rollback failed", "failed")
            if record.status in stops and rollout.stopped_at is None:
                rollout.stopped_at = f"{name}: {record.reason.split(':')[0]}"
    return rollout, outcomes
