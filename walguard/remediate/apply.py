"""Paired remediation: plan (the scripts' check mode), apply, then verify by collecting facts
again and judging the controls again. Nothing here runs unless --remediate is given.

Per host, all scripts run in one SSH command, each under its own timeout, while a lock holder
on the host keeps `/run/walguard/remediation.lock` (a root-only directory) from the first script
to the end of the re-check, so two walguard runs never remediate or verify a host at once. Values
reach the scripts only as shell-quoted environment variables. The outcome recorded is what the
re-check finds, never a guess from a script's exit status: a script killed by its timeout after
its fix took effect is REMEDIATED, and one that exited 0 without fixing anything is not.
"""

from __future__ import annotations

import secrets
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walguard.archive.command import reading_of
from walguard.audit.run import AuditRun
from walguard.controls import FUNCTIONS, REGISTRY, SOURCES
from walguard.errors import FactUnavailable
from walguard.facts.collect import collect
from walguard.facts.host import HostFacts
from walguard.facts.sections import split_sections
from walguard.facts.transport import Connection, read_line
from walguard.inventory.load import Target
from walguard.judge import judge
from walguard.paths import REMEDIATION_DIR, remediation_dir_for
from walguard.policy.model import Connect, Policy
from walguard.results import FAIL, PASS, REMEDIATED, REMEDIATION_FAILED, REMEDIATION_REFUSED

# /run belongs to root, so nobody else can create (and squat) this directory; the lock holder
# refuses one that is not root's own 0700.
LOCK_DIR = "/run/walguard"
LOCK_FILE = f"{LOCK_DIR}/remediation.lock"
LOCK_BUSY = 75
LOCK_BAD_DIR = 76
REFUSED_RC = 3  # common.sh's `die`: the script saw its fix could make things worse
TIMED_OUT_RC = 124  # timeout(1)

PLANNED = "PLANNED"
REFUSED = "REFUSED"  # not run: disruptive and not allowed
NOT_RUN = "NOT RUN"


@dataclass(frozen=True)
class Script:
    control: str
    path: Path
    changes: str
    disruptive: bool

    def text(self) -> str:
        # Every script, a user control's too, runs with the shipped library of helpers.
        return (REMEDIATION_DIR / "lib" / "common.sh").read_text() + "\n" + self.path.read_text()


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

    def as_dict(self) -> dict[str, Any]:
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
        }


def _header(text: str, key: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"# {key}:"):
            parts = [line.split(":", 1)[1].strip()]
            for cont in lines[i + 1 :]:
                if not cont.startswith("#  "):  # continuation lines are indented
                    break
                parts.append(cont[1:].strip())
            return " ".join(parts)
    return ""


def read_script(path: Path) -> Script:
    text = path.read_text()
    return Script(
        control=_header(text, "control"),
        path=path,
        changes=_header(text, "changes"),
        disruptive=_header(text, "disruptive").startswith("yes"),
    )


def scripts(directory: Path = REMEDIATION_DIR) -> dict[str, Script]:
    """The shipped scripts, by control id (their file names)."""
    return {path.stem: read_script(path) for path in sorted(directory.glob("WG-*.sh"))}


def paired_scripts(controls: list[str]) -> dict[str, Script]:
    """The paired script of each control that names one (its `remediation=`), from the
    remediation/ directory beside the control's own directory: the shipped scripts for the
    shipped controls, DIR/../remediation/ for a user's controls in DIR."""
    found = {}
    for control in controls:
        meta, source = REGISTRY.get(control), SOURCES.get(control)
        if meta is None or not meta.remediation:
            continue
        directory = remediation_dir_for(source.parent) if source else REMEDIATION_DIR
        path = directory / meta.remediation
        if path.is_file():
            found[control] = read_script(path)
    return found


def script_env(
    policy: Policy,
    control: str,
    mode: str,
    change_ref: str | None,
    connect: Connect | None = None,
) -> dict[str, str]:
    connect = connect or Connect()
    return {
        "WG_PG_SOCKET_DIR": connect.pg_socket_dir,
        "WG_PG_PORT": str(connect.pg_port),
        "WG_RUN": mode,
        "WG_CONTROL": control,
        "WG_CHANGE_REF": change_ref or "none",
        "WG_ARCHIVE_DIR": policy.archive_dir,
        "WG_OWNER": policy.archive_owner,
        "WG_GROUP": policy.archive_group,
        "WG_RESTORE_USER": policy.restore_user or policy.archive_owner,
        "WG_DIR_MODE": policy.archive_allowed_modes[0],
        "WG_ALLOWED_MODES": " ".join(policy.archive_allowed_modes),
        "WG_RPO_S": str(policy.rpo_minutes * 60),
        # A segment switch at least every 5 minutes, and never later than the RPO.
        "WG_ARCHIVE_TIMEOUT_S": str(min(300, policy.rpo_minutes * 60)),
        "WG_SERVICE": policy.postgres_service,
        "WG_SELINUX_ARCHIVE_TYPE": policy.selinux_archive_type,
    }


def facts_env(before: HostFacts, policy: Policy) -> dict[str, str]:
    """What the audit found, for the scripts to refuse a fix that could make things worse: how
    the server archives now (a tool, a library or an unknown wrapper is never replaced by a
    local copy) and whether a volume is required under the archive directory."""
    env = {"WG_REQUIRE_MOUNT": "yes" if policy.require_dedicated_mount else "no"}
    pg = before.pg.value
    if pg is not None and pg.system_identifier:
        data_dir = pg.settings.get("data_directory")
        env["WG_SYSTEM_ID"] = str(pg.system_identifier)
        env["WG_DATA_DIR"] = data_dir.setting if data_dir is not None else ""
    if pg is None:
        return {
            **env,
            "WG_ARCHIVE_KIND": "unread",
            "WG_JUDGED_COMMAND": "",
            "WG_ARCHIVE_TARGET_DIR": "",
        }
    found = reading_of(pg, policy)
    command = pg.settings.get("archive_command")
    return {
        **env,
        "WG_ARCHIVE_KIND": found.kind,
        "WG_JUDGED_COMMAND": command.setting if command is not None else "",
        "WG_ARCHIVE_TARGET_DIR": found.target_dir or "",
    }


def host_command(items: list[tuple[Script, dict[str, str]]], token: str, timeout_s: int) -> str:
    """One remote command for all of a host's scripts: each framed like a collector section,
    each under its own timeout, its duration on its END line."""
    parts = []
    for script, env in items:
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        tok, ctl = shlex.quote(token), shlex.quote(script.control)
        parts.append(
            f"printf '%s BEGIN %s\\n' {tok} {ctl}; t0=$(date +%s.%N); "
            f"env {assignments} timeout -k 10 {int(timeout_s)} bash -c "
            f"{shlex.quote(script.text())} 2>&1; rc=$?; "
            f'printf \'\\n%s END %s %s %s\\n\' {tok} {ctl} "$rc" "$(date +%s.%N) $t0"'
        )
    return f"bash -c {shlex.quote(chr(10).join(parts))}"


def lock_holder_command() -> str:
    """Takes the host's remediation lock and holds it while its stdin stays open."""
    d, f = shlex.quote(LOCK_DIR), shlex.quote(LOCK_FILE)
    inner = (
        f"umask 077; mkdir -p {d} || exit {LOCK_BAD_DIR}; "
        f'[ "$(stat -c %u:%a {d})" = 0:700 ] || '
        f'{{ echo "BADDIR $(stat -c %U:%a {d})"; exit {LOCK_BAD_DIR}; }}; '
        f"exec flock -n -E {LOCK_BUSY} {f} sh -c 'echo LOCKED; exec cat >/dev/null'"
    )
    return f"sh -c {shlex.quote(inner)}"


class HostLock:
    """The host's remediation lock, held over the connection from `acquire` to `release`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.proc: subprocess.Popen[bytes] | None = None

    def acquire(self) -> None:
        self.proc = self.conn.start(lock_holder_command(), become=True)
        line = read_line(self.proc.stdout)
        if line == "LOCKED":
            return
        rc = self.proc.wait(timeout=30)
        err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
        self.proc = None
        if rc == LOCK_BUSY:
            raise FactUnavailable("another walguard run is remediating this host (lock held)")
        if line.startswith("BADDIR"):
            raise FactUnavailable(
                f"{LOCK_DIR} is not root's own 0700 directory ({line.split(' ', 1)[-1]}): "
                "refusing to take a lock another user could hold"
            )
        raise FactUnavailable(f"cannot take the remediation lock: {err or line or f'exit {rc}'}")

    def release(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@dataclass(frozen=True)
class ScriptRun:
    rc: int
    output: str
    duration_s: float | None


def run_scripts(
    conn: Connection,
    target: Target,
    items: list[Script],
    mode: str,
    change_ref: str | None,
    found: dict[str, str] | None = None,
) -> dict[str, ScriptRun]:
    """Run the scripts (check or apply) on one host over an open connection; `found` is what
    the facts read just before say (facts_env)."""
    token = f"@@WG-{secrets.token_hex(8)}@@"
    prepared = [
        (
            s,
            {
                **script_env(target.policy, s.control, mode, change_ref, target.connect),
                **(found or {}),
            },
        )
        for s in items
    ]
    per_script = target.connect.remediation_timeout_s
    # Every script may use its whole timeout; the command as a whole waits for all of them.
    reply = conn.run_raw(
        host_command(prepared, token, per_script),
        become=True,
        timeout_s=len(items) * (per_script + 15) + 30,
    )
    sections = split_sections(reply.stdout, token)
    results = {}
    for script, _ in prepared:
        sec = sections.get(script.control)
        if sec is None:
            reason = f"no output from the script ({reply.stderr.strip()[:200]})"
            results[script.control] = ScriptRun(-1, reason, None)
        else:
            results[script.control] = ScriptRun(sec.rc, sec.output.strip(), sec.duration_s)
    return results


def remediate_host(
    target: Target,
    failing: list[str],
    *,
    mode: str,
    allow_disruptive: bool,
    change_ref: str | None,
    reachable: bool,
) -> list[Outcome]:
    """Plan or apply the paired scripts for a host's failing controls, then verify (apply)."""
    available = paired_scripts(failing)
    outcomes: list[Outcome] = []
    runnable: list[Script] = []
    for control in failing:
        script = available.get(control)
        if script is None:
            continue
        name = script.path.name
        if not reachable:
            outcomes.append(Outcome(control, name, mode, NOT_RUN, "host unreachable", change_ref))
        elif mode == "apply" and script.disruptive and not allow_disruptive:
            outcomes.append(
                Outcome(
                    control,
                    name,
                    mode,
                    REFUSED,
                    f"disruptive ({script.changes}); rerun with --allow-disruptive to apply it",
                    change_ref,
                )
            )
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
                Outcome(s.control, s.path.name, mode, REMEDIATION_FAILED, str(exc), change_ref)
                for s in runnable
            ]
        # What the host is like now (under the lock, when applying): the scripts judge by it.
        found = facts_env(collect(target, conn=conn), target.policy)
        if mode == "plan":
            try:
                ran = run_scripts(conn, target, runnable, "check", change_ref, found)
            except FactUnavailable as exc:
                ran = {s.control: ScriptRun(-1, str(exc), None) for s in runnable}
            return outcomes + [
                Outcome(s.control, s.path.name, mode, PLANNED, ran[s.control].output, change_ref)
                for s in runnable
            ]
        return outcomes + _apply_and_verify(conn, target, runnable, change_ref, found)
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


def remediate_run(
    run: AuditRun,
    mode: str,
    *,
    allow_disruptive: bool,
    change_ref: str | None,
    say: Callable[[str], object],
) -> None:
    """Remediate every host's failed controls (plan or apply) and record each outcome with its
    result: REMEDIATED, REMEDIATION FAILED and REMEDIATION REFUSED replace FAIL; a plan, a
    disruptive script not allowed, or an unreachable host leave the FAIL standing."""
    final = (REMEDIATED, REMEDIATION_FAILED, REMEDIATION_REFUSED)
    for target in run.targets:
        failing = sorted(
            c for (h, c), r in run.results.items() if h == target.name and r.result == FAIL
        )
        if not failing:
            continue
        say(f"walguard: remediation ({mode}) on {target.name}: {', '.join(failing)}")
        try:
            outcomes = remediate_host(
                target,
                failing,
                mode=mode,
                allow_disruptive=allow_disruptive,
                change_ref=change_ref,
                reachable=bool(run.hosts[target.name].reachable),
            )
        except Exception as exc:  # one host's surprise is its own outcome, never the run's end
            reason = " ".join(f"remediation stopped: {type(exc).__name__}: {exc}".split())
            outcomes = [
                Outcome(c, f"{c}.sh", mode, REMEDIATION_FAILED, reason, change_ref) for c in failing
            ]
        for o in outcomes:
            result = o.status if o.status in final else FAIL
            run.replace_result((target.name, o.control), result=result, remediation=o.as_dict())
