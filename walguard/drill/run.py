"""Running the restore drill on one host over its open connection: drill.sh as root under one
deadline, its parameters from the policy as shell-quoted environment variables, its framed output
kept whole as evidence."""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Callable, Mapping
from dataclasses import replace
from importlib import resources
from types import MappingProxyType
from typing import Any

from walguard.errors import FactUnavailable
from walguard.facts.drill_result import DrillResult, parse_drill
from walguard.facts.host import HostFacts
from walguard.facts.pgbackrest_backups import PgBackRestInfo
from walguard.facts.sections import Section, split_sections
from walguard.facts.transport import Connection
from walguard.inventory.load import Target
from walguard.part import Part
from walguard.policy.model import PolicyError

NOT_ASKED = "--restore-drill not given"
NO_SCRATCH = "cannot drill: the policy names no scratch directory (walguard_restore_scratch_dir)"
NO_BACKUPS = "cannot drill: the policy names no base backups (walguard_base_backup_dir)"
NOT_YET = "cannot drill: walguard restores only pg_basebackup's and pgBackRest's backups so far"
NOT_YET_THERE = (
    "cannot drill: walguard restores only pg_basebackup's backups on a restore host so far"
)
# pgBackRest's labels: full, or a differential/incremental on top of its full backup.
_PGBR_LABEL = r"\d{8}-\d{6}F(?:_\d{8}-\d{6}[DI])?"
_WAL_SEGMENT_BYTES = 16 * 1024 * 1024  # the default segment size: an estimate's unit


def restore_hosts(targets: list[Target]) -> dict[str, Target]:
    """Each host's restore host (walguard_restore_host), found among all the inventory's hosts
    (also those --limit leaves out: a restore host is used, not audited). A name the inventory
    does not hold, or the host itself, is the inventory's error (PolicyError), before any host
    is touched."""
    by_name = {t.name: t for t in targets}
    found: dict[str, Target] = {}
    for target in targets:
        name = target.policy.restore_host
        if name is None:
            continue
        key = "walguard_restore_host"
        if name == target.name:
            raise PolicyError(target.name, key, "names the host itself (leave it null for that)")
        if name not in by_name:
            raise PolicyError(target.name, key, f"no host {name!r} in the inventory")
        found[target.name] = by_name[name]
    return found


def drill_script() -> str:
    return resources.files("walguard.drill").joinpath("drill.sh").read_text()


def drill_command(
    target: Target,
    archive_dir: str,
    token: str,
    archive_wait_s: float,
    *,
    phase: str = "all",
    restorer: Target | None = None,
    handed: Mapping[str, str] = MappingProxyType({}),
) -> str:
    """drill.sh for `target`'s drill, one phase of it: "all" on the host itself, "canary" on the
    host, "restore" on its restore host `restorer` (whose own policy names its scratch, its
    cluster owner and its limits), with what the canary phase `handed` on."""
    policy, connect = target.policy, target.connect
    on = restorer.policy if restorer is not None else policy
    env = {
        "WG_TOKEN": token,
        "WG_PHASE": phase,
        "WG_BACKUP_DIR": (
            (policy.restore_backup_dir or policy.base_backup_dir)
            if restorer is not None
            else policy.base_backup_dir
        )
        or "",
        "WG_ARCHIVE_DIR": (policy.restore_archive_dir or archive_dir)
        if restorer is not None
        else archive_dir,
        "WG_SCRATCH_DIR": on.restore_scratch_dir or "",
        "WG_PG_OWNER": on.archive_owner,
        "WG_SERVICE": policy.postgres_service,
        "WG_PG_SOCKET_DIR": connect.pg_socket_dir,
        "WG_PG_PORT": str(connect.pg_port),
        "WG_CANARY_DB": policy.restore_canary_db,
        "WG_ARCHIVE_WAIT_S": str(max(1, int(archive_wait_s))),
        "WG_DEADLINE_S": str(policy.restore_timeout_s),
        "WG_MEMORY_MAX": on.restore_memory_max,
        "WG_CPU_QUOTA": on.restore_cpu_quota,
        **handed,
    }
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return (
        f"env {assignments} timeout -k 15 {policy.restore_timeout_s} "
        f"bash -c {shlex.quote(drill_script())}"
    )


def drill_step(
    archive_wait_s: float, restorers: Mapping[str, Target] = MappingProxyType({})
) -> Callable[[Connection, HostFacts], HostFacts]:
    """What the audit hands the fact collection (walguard.facts.collect's `then`) when
    --restore-drill asks for a drill: run it over the host's connection once its facts are read
    (opt-in, not a fact: it writes canary rows, switches WAL and restores a backup), and add its
    result and output to them."""

    def step(conn: Connection, found: HostFacts) -> HostFacts:
        target = conn.target
        archive = found.archive.value
        where = (archive.real_path if archive is not None else "") or target.policy.archive_dir
        drill, output = run_drill(
            conn, target, where, archive_wait_s, restorer=restorers.get(target.name),
            backups=found.backups,
        )  # fmt: skip
        evidence = {**found.evidence, **({"restore_drill": output} if output else {})}
        return replace(found, drill=drill, evidence=MappingProxyType(evidence))

    return step


def run_drill(
    conn: Connection,
    target: Target,
    archive_dir: str,
    archive_wait_s: float,
    *,
    restorer: Target | None = None,
    backups: Part[Any] | None = None,
) -> tuple[Part[DrillResult], str]:
    """The drill's result (or why it could not be had: ERROR) and its whole output: on the host
    itself, or with the canaries here and the restore on its restore host `restorer`. With
    pgBackRest, `backups` is what its info said at this audit (the newest backup is restored)."""
    policy = target.policy
    source = policy.backup_source
    extra: dict[str, str] = {}
    if source == "pgbackrest":
        if restorer is not None:
            return Part(error=f"{NOT_YET_THERE} (walguard_restore_host: {restorer.name})"), ""
        named = _pgbackrest_newest(backups, policy.pgbackrest_stanza or "")
        if isinstance(named, str):
            return Part(error=named), ""
        extra = named
    elif source not in (None, "pg_basebackup"):
        # Never a guess at another tool's restore: an honest ERROR until walguard drives it.
        return Part(error=f"{NOT_YET} (walguard_base_backup_source: {source})"), ""
    elif policy.base_backup_dir is None:
        return Part(error=NO_BACKUPS), ""
    scratch = (restorer.policy if restorer is not None else policy).restore_scratch_dir
    if scratch is None:
        return Part(error=NO_SCRATCH if restorer is None else _no_scratch_on(restorer)), ""
    token = f"@@WG-{secrets.token_hex(8)}@@"
    timeout_s = policy.restore_timeout_s + 30
    if restorer is None:
        command = drill_command(target, archive_dir, token, archive_wait_s, handed=extra)
        ran = _run(conn, command, timeout_s)
        if isinstance(ran, Part):
            return ran, ""
        return _parsed(target, split_sections(ran, token), ran)
    canary_cmd = drill_command(target, archive_dir, token, archive_wait_s, phase="canary")
    ran = _run(conn, canary_cmd, timeout_s)
    if isinstance(ran, Part):
        return ran, ""
    sections = split_sections(ran, token)
    canary = sections.get("drill_canary")
    if canary is None or canary.rc != 0:
        why = canary.output.strip().splitlines()[-1:] if canary is not None else []
        return Part(error=(why or ["cannot drill: the canaries were not written"])[0]), ran
    try:
        handed = _handed(canary.output)
    except FactUnavailable as exc:
        return Part(error=str(exc)), ran
    restore_cmd = drill_command(
        target, archive_dir, token, archive_wait_s, phase="restore", restorer=restorer,
        handed=handed,
    )  # fmt: skip
    there = Connection(restorer)
    try:
        there.open()
        got = _run(there, restore_cmd, timeout_s)
    except FactUnavailable as exc:
        got = Part(error=f"cannot drill on the restore host {restorer.name}: {exc}")
    finally:
        there.close()
    if isinstance(got, Part):
        return got, ran
    output = f"[{target.name}: canaries]\n{ran}\n[{restorer.name}: restore]\n{got}"
    restored = split_sections(got, token)
    return _parsed(target, {**restored, "drill_canary": canary}, output, restorer.name)


def _pgbackrest_newest(backups: Part[Any] | None, stanza: str) -> dict[str, str] | str:
    """What the drill needs of the stanza's newest backup, from pgBackRest's info read at this
    audit; or why there is none to restore (a string: the ERROR)."""
    info = backups.value if backups is not None else None
    if not isinstance(info, PgBackRestInfo):
        why = backups.error if backups is not None else None
        return f"cannot drill: pgBackRest's info was not read ({why or 'not collected'})"
    newest = info.newest()
    if newest is None:
        return f"cannot drill: pgBackRest's stanza {stanza} has no backup to restore"
    if (
        re.fullmatch(_PGBR_LABEL, newest.label) is None
        or newest.archive_start is None
        or newest.size is None
    ):
        return f"cannot drill: pgBackRest's newest backup {newest.label!r} is not readable"
    archive = info.archive_of(newest)
    segments = 1
    if archive is not None and archive.max is not None:
        segments = max(1, _segment_number(archive.max) - _segment_number(newest.archive_start) + 1)
    return {
        "WG_SOURCE": "pgbackrest",
        "WG_STANZA": stanza,
        "WG_PGBR_SET": newest.label,
        "WG_PGBR_SIZE": str(newest.size),
        "WG_PGBR_START_WAL": newest.archive_start,
        "WG_PGBR_WAL_BYTES": str(segments * _WAL_SEGMENT_BYTES),
    }


def _segment_number(name: str) -> int:
    """A WAL segment's number within its timeline, for 16 MiB segments (log * 256 + seg)."""
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def _no_scratch_on(restorer: Target) -> str:
    return (
        f"cannot drill: the restore host {restorer.name} names no scratch directory "
        "(its walguard_restore_scratch_dir)"
    )


def _handed(canary_output: str) -> dict[str, str]:
    """What the restore phase needs of the canary phase: the canaries' id, the target time, the
    switched segment (each checked: they become a command's environment on another host)."""
    found: dict[str, str] = {}
    for line in canary_output.splitlines():
        key, _, value = line.partition(" ")
        found.setdefault(key, value.strip())
    canary_id = found.get("a", "").split("|")[0].removesuffix("-A")
    return {
        "WG_CANARY_ID": _checked(canary_id, r"walguard-[0-9TZ]+-[0-9]+"),
        "WG_TARGET_TIME": _checked(
            found.get("target", ""), r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
        ),
        "WG_SWITCHED": _checked(found.get("switched", ""), r"[0-9A-F]{24}"),
    }


def _checked(value: str, pattern: str) -> str:
    if re.fullmatch(pattern, value) is None:
        raise FactUnavailable(f"cannot drill: the canary phase printed {value!r}")
    return value


def _run(conn: Connection, command: str, timeout_s: int) -> str | Part[DrillResult]:
    try:
        reply = conn.run_raw(command, become=True, timeout_s=timeout_s)
    except FactUnavailable as exc:
        return Part(error=f"cannot drill: {exc}")
    return reply.stdout + (f"\n[stderr]\n{reply.stderr}" if reply.stderr.strip() else "")


def _parsed(
    target: Target,
    sections: Mapping[str, Section],
    output: str,
    restored_on: str | None = None,
) -> tuple[Part[DrillResult], str]:
    try:
        drill = parse_drill(dict(sections))
    except FactUnavailable as exc:
        return Part(error=f"{target.name}: {exc}"), output
    return Part(replace(drill, restored_on=restored_on)), output
