"""Running a host's paired scripts: what each receives (the policy's values and the facts just
read, as shell-quoted environment variables), and one SSH command that runs them all, each under
its own timeout and framed like a collector section, its exit status and duration on its END line.
"""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass

from walguard.archive.command import reading_of
from walguard.control_scripts import Script
from walguard.facts.host import HostFacts
from walguard.facts.sections import Section, split_sections
from walguard.facts.transport import Connection
from walguard.inventory.load import Target
from walguard.policy.model import Connect, Policy

REFUSED_RC = 3  # common.sh's `die`: the script saw its fix could make things worse
TIMED_OUT_RC = 124  # timeout(1)


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
        "WG_RPO_S": str(max(1, int(policy.rpo_minutes * 60))),
        # A segment switch at least every 5 minutes, and never later than the RPO.
        "WG_ARCHIVE_TIMEOUT_S": str(max(1, min(300, int(policy.rpo_minutes * 60)))),
        "WG_SERVICE": policy.postgres_service,
        "WG_RESTART_TIMEOUT_S": str(policy.restart_timeout_s),
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


WATCH_SECTION = "downtime"


def host_command(
    items: list[tuple[Script, dict[str, str]]], token: str, timeout_s: int, watcher: str = ""
) -> str:
    """One remote command for all of a host's scripts: each framed like a collector section,
    each under its own timeout, its duration on its END line. A `watcher` (a command line) runs
    in the background meanwhile, its output kept in a file and framed as the `downtime`
    section after the last script."""
    parts = []
    tok = shlex.quote(token)
    if watcher:
        parts.append(f'W=$(mktemp) || exit 1; {watcher} > "$W" 2>/dev/null & WP=$!; sleep 0.3')
    for script, env in items:
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        ctl = shlex.quote(script.control)
        parts.append(
            f"printf '%s BEGIN %s\\n' {tok} {ctl}; t0=$(date +%s.%N); "
            f"env {assignments} timeout -k 10 {int(timeout_s)} bash -c "
            f"{shlex.quote(script.text())} 2>&1; rc=$?; "
            f'printf \'\\n%s END %s %s %s\\n\' {tok} {ctl} "$rc" "$(date +%s.%N) $t0"'
        )
    if watcher:
        parts.append(
            f'sleep 0.3; kill "$WP" 2>/dev/null; wait "$WP" 2>/dev/null; '
            f'printf \'%s BEGIN %s\\n\' {tok} {WATCH_SECTION}; cat -- "$W"; rm -f -- "$W"; '
            f"printf '\\n%s END %s 0\\n' {tok} {WATCH_SECTION}"
        )
    return f"bash -c {shlex.quote(chr(10).join(parts))}"


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
    watcher: str = "",
    watched: dict[str, Section] | None = None,
) -> dict[str, ScriptRun]:
    """Run the scripts (check or apply) on one host over an open connection; `found` is what
    the facts read just before say (facts_env). With a `watcher`, what it printed is put into
    `watched` under WATCH_SECTION."""
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
        host_command(prepared, token, per_script, watcher),
        become=True,
        timeout_s=len(items) * (per_script + 15) + 30,
    )
    sections = split_sections(reply.stdout, token)
    if watched is not None and WATCH_SECTION in sections:
        watched[WATCH_SECTION] = sections[WATCH_SECTION]
    results = {}
    for script, _ in prepared:
        sec = sections.get(script.control)
        if sec is None:
            reason = f"no output from the script ({reply.stderr.strip()[:200]})"
            results[script.control] = ScriptRun(-1, reason, None)
        else:
            results[script.control] = ScriptRun(sec.rc, sec.output.strip(), sec.duration_s)
    return results
