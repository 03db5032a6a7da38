"""Paired remediation: plan (the scripts' check mode), apply, then verify by collecting facts
again and re-evaluating the controls. Nothing here runs unless --remediate is given.

Per host, all scripts run in one SSH command, under `flock` on the host so that two walguard runs
never remediate it at once. Values reach the scripts only as shell-quoted environment variables.
"""

from __future__ import annotations

import inspect
import secrets
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walguard.collect import collect
from walguard.controls import FUNCTIONS, NotApplicable
from walguard.errors import FactUnavailable
from walguard.facts import HostFacts
from walguard.inventory import Target
from walguard.policy import Policy
from walguard.sections import split_sections
from walguard.transport import Connection

REMEDIATION_DIR = Path(__file__).resolve().parents[1] / "remediation"
LOCK_FILE = "/run/lock/walguard-remediation.lock"
LOCK_BUSY = 75

REMEDIATED = "REMEDIATED"
REMEDIATION_FAILED = "REMEDIATION FAILED"
PLANNED = "PLANNED"
REFUSED = "REFUSED"
NOT_RUN = "NOT RUN"


@dataclass(frozen=True)
class Script:
    control: str
    path: Path
    changes: str
    disruptive: bool

    def text(self) -> str:
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


def scripts(directory: Path = REMEDIATION_DIR) -> dict[str, Script]:
    found = {}
    for path in sorted(directory.glob("WG-*.sh")):
        text = path.read_text()
        found[path.stem] = Script(
            control=_header(text, "control"),
            path=path,
            changes=_header(text, "changes"),
            disruptive=_header(text, "disruptive").startswith("yes"),
        )
    return found


def script_env(policy: Policy, control: str, mode: str, change_ref: str | None) -> dict[str, str]:
    return {
        "WG_RUN": mode,
        "WG_CONTROL": control,
        "WG_CHANGE_REF": change_ref or "none",
        "WG_ARCHIVE_DIR": policy.archive_dir,
        "WG_OWNER": policy.archive_owner,
        "WG_GROUP": policy.archive_group,
        "WG_DIR_MODE": policy.archive_allowed_modes[0],
        "WG_ALLOWED_MODES": " ".join(policy.archive_allowed_modes),
        "WG_RPO_S": str(policy.rpo_minutes * 60),
        # A segment switch at least every 5 minutes, and never later than the RPO.
        "WG_ARCHIVE_TIMEOUT_S": str(min(300, policy.rpo_minutes * 60)),
        "WG_SERVICE": policy.postgres_service,
        "WG_SELINUX_ARCHIVE_TYPE": policy.selinux_archive_type,
    }


def host_command(items: list[tuple[Script, dict[str, str]]], token: str, lock: bool) -> str:
    """One remote command for all of a host's scripts: each framed like a collector section."""
    parts = []
    for script, env in items:
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        tok, ctl = shlex.quote(token), shlex.quote(script.control)
        parts.append(
            f"printf '%s BEGIN %s\\n' {tok} {ctl}; "
            f"env {assignments} bash -c {shlex.quote(script.text())} 2>&1; rc=$?; "
            f"printf '\\n%s END %s %s\\n' {tok} {ctl} \"$rc\""
        )
    driver = "\n".join(parts)
    inner = f"bash -c {shlex.quote(driver)}"
    if lock:
        # -n: a second run does not wait behind the first, it is told the host is busy.
        return f"flock -n -E {LOCK_BUSY} {LOCK_FILE} {inner}"
    return inner


def run_scripts(
    target: Target,
    policy: Policy,
    items: list[tuple[Script, str]],
    mode: str,
    change_ref: str | None,
) -> dict[str, tuple[int, str]]:
    """Run the scripts (check or apply) on one host; returns control -> (rc, output)."""
    token = f"@@WG-{secrets.token_hex(8)}@@"
    prepared = [(s, script_env(policy, s.control, mode, change_ref)) for s, _ in items]
    conn = Connection(target, policy)
    try:
        conn.open()
        rc, out, err = conn.run(host_command(prepared, token, lock=mode == "apply"), become=True)
    finally:
        conn.close()
    if rc == LOCK_BUSY:
        raise FactUnavailable("another walguard run is remediating this host (lock held)")
    sections = split_sections(out, token)
    results = {}
    for script, _ in prepared:
        sec = sections.get(script.control)
        if sec is None:
            results[script.control] = (-1, f"no output from the script ({err.strip()[:200]})")
        else:
            results[script.control] = (sec.rc, sec.output.strip())
    return results


def evaluate(control: str, facts: HostFacts, policy: Policy, target: Target) -> tuple[str, str]:
    """Re-run one control's function on fresh facts: (PASS|FAIL|ERROR|NOT APPLICABLE, message)."""
    fn = FUNCTIONS[control]
    providers: dict[str, Callable[[], Any]] = {
        "facts": lambda: facts,
        "policy": lambda: policy,
        "target": lambda: target,
        "pg": facts.pg.get,
        "archive": facts.archive.get,
        "probe": facts.probe.get,
        "selinux": facts.selinux.get,
    }
    try:
        facts.require_reachable()
        kwargs = {name: providers[name]() for name in inspect.signature(fn).parameters}
        fn(**kwargs)
    except AssertionError as exc:
        return "FAIL", " ".join(str(exc).split("\nassert ")[0].split())
    except NotApplicable as exc:
        return "NOT APPLICABLE", str(exc)
    except FactUnavailable as exc:
        return "ERROR", str(exc)
    return "PASS", ""


def remediate_host(
    target: Target,
    policy: Policy,
    failing: list[str],
    *,
    mode: str,
    allow_disruptive: bool,
    change_ref: str | None,
    reachable: bool,
) -> list[Outcome]:
    """Plan or apply the paired scripts for a host's failing controls, then verify (apply)."""
    available = scripts()
    outcomes: list[Outcome] = []
    runnable: list[tuple[Script, str]] = []
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
            runnable.append((script, name))
    if not runnable:
        return outcomes
    try:
        ran = run_scripts(
            target, policy, runnable, "check" if mode == "plan" else "apply", change_ref
        )
    except FactUnavailable as exc:
        return outcomes + [
            Outcome(s.control, n, mode, REMEDIATION_FAILED, str(exc), change_ref)
            for s, n in runnable
        ]
    if mode == "plan":
        return outcomes + [
            Outcome(s.control, n, mode, PLANNED, ran[s.control][1], change_ref) for s, n in runnable
        ]
    fresh = collect(target, policy)
    for script, name in runnable:
        rc, output = ran[script.control]
        verdict, message = evaluate(script.control, fresh, policy, target)
        status = REMEDIATED if rc == 0 and verdict == "PASS" else REMEDIATION_FAILED
        if rc != 0:
            output = f"script exit {rc}: {output}"
        outcomes.append(
            Outcome(script.control, name, mode, status, output, change_ref, verdict, message)
        )
    return outcomes
