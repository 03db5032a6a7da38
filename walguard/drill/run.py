"""Running the restore drill on one host over its open connection: drill.sh as root under one
deadline, its parameters from the policy as shell-quoted environment variables, its framed output
kept whole as evidence."""

from __future__ import annotations

import secrets
import shlex
from collections.abc import Callable
from dataclasses import replace
from importlib import resources
from types import MappingProxyType

from walguard.errors import FactUnavailable
from walguard.facts.drill_result import DrillResult, parse_drill
from walguard.facts.host import HostFacts
from walguard.facts.sections import split_sections
from walguard.facts.transport import Connection
from walguard.inventory.load import Target
from walguard.part import Part

NOT_ASKED = "--restore-drill not given"
NO_SCRATCH = "cannot drill: the policy names no scratch directory (walguard_restore_scratch_dir)"
NO_BACKUPS = "cannot drill: the policy names no base backups (walguard_base_backup_dir)"
NOT_YET = "cannot drill: walguard restores only pg_basebackup's backups so far"


def drill_script() -> str:
    return resources.files("walguard.drill").joinpath("drill.sh").read_text()


def drill_command(target: Target, archive_dir: str, token: str, archive_wait_s: float) -> str:
    policy, connect = target.policy, target.connect
    env = {
        "WG_TOKEN": token,
        "WG_BACKUP_DIR": policy.base_backup_dir or "",
        "WG_ARCHIVE_DIR": archive_dir,
        "WG_SCRATCH_DIR": policy.restore_scratch_dir or "",
        "WG_PG_OWNER": policy.archive_owner,
        "WG_SERVICE": policy.postgres_service,
        "WG_PG_SOCKET_DIR": connect.pg_socket_dir,
        "WG_PG_PORT": str(connect.pg_port),
        "WG_CANARY_DB": policy.restore_canary_db,
        "WG_ARCHIVE_WAIT_S": str(max(1, int(archive_wait_s))),
        "WG_DEADLINE_S": str(policy.restore_timeout_s),
        "WG_MEMORY_MAX": policy.restore_memory_max,
        "WG_CPU_QUOTA": policy.restore_cpu_quota,
    }
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return (
        f"env {assignments} timeout -k 15 {policy.restore_timeout_s} "
        f"bash -c {shlex.quote(drill_script())}"
    )


def drill_step(archive_wait_s: float) -> Callable[[Connection, HostFacts], HostFacts]:
    """What the audit hands the fact collection (walguard.facts.collect's `then`) when
    --restore-drill asks for a drill: run it over the host's connection once its facts are read
    (opt-in, not a fact: it writes canary rows, switches WAL and restores a backup), and add its
    result and output to them."""

    def step(conn: Connection, found: HostFacts) -> HostFacts:
        target = conn.target
        archive = found.archive.value
        where = (archive.real_path if archive is not None else "") or target.policy.archive_dir
        drill, output = run_drill(conn, target, where, archive_wait_s)
        evidence = {**found.evidence, **({"restore_drill": output} if output else {})}
        return replace(found, drill=drill, evidence=MappingProxyType(evidence))

    return step


def run_drill(
    conn: Connection, target: Target, archive_dir: str, archive_wait_s: float
) -> tuple[Part[DrillResult], str]:
    """The drill's result (or why it could not be had: ERROR) and its whole output."""
    policy = target.policy
    source = policy.backup_source
    if source not in (None, "pg_basebackup"):
        # Never a guess at another tool's restore: an honest ERROR until walguard drives it.
        return Part(error=f"{NOT_YET} (walguard_base_backup_source: {source})"), ""
    if policy.base_backup_dir is None:
        return Part(error=NO_BACKUPS), ""
    if policy.restore_scratch_dir is None:
        return Part(error=NO_SCRATCH), ""
    token = f"@@WG-{secrets.token_hex(8)}@@"
    try:
        reply = conn.run_raw(
            drill_command(target, archive_dir, token, archive_wait_s),
            become=True,
            timeout_s=policy.restore_timeout_s + 30,
        )
    except FactUnavailable as exc:
        return Part(error=f"cannot drill: {exc}"), ""
    output = reply.stdout + (f"\n[stderr]\n{reply.stderr}" if reply.stderr.strip() else "")
    try:
        return Part(parse_drill(split_sections(reply.stdout, token))), output
    except FactUnavailable as exc:
        return Part(error=f"{target.name}: {exc}"), output
