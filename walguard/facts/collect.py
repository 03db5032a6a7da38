"""Facts first: one round trip over SSH per host, the collector and then PostgreSQL's one query
(psql as the login user). Everything that goes wrong becomes part of the snapshot (an ERROR
reason), never an exception that stops the other hosts."""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Callable
from types import MappingProxyType

from walguard.errors import FactUnavailable
from walguard.facts import collector, ssh_words
from walguard.facts import postgres as pgfacts
from walguard.facts.archive_dir import ArchiveDir, parse_archive_dir
from walguard.facts.backups import BaseBackups, parse_backups
from walguard.facts.boot import start_conf_path
from walguard.facts.host import NO_BACKUP_SOURCE, HostFacts, unread_backup_source
from walguard.facts.pgbackrest_backups import PgBackRestInfo, parse_pgbackrest_info
from walguard.facts.platform import parse_platform
from walguard.facts.postgres_state import Postgres, ProbeResult
from walguard.facts.sections import Section, split_sections
from walguard.facts.selinux import SelinuxFacts, parse_selinux
from walguard.facts.transport import Cancel, Connection
from walguard.facts.wal_window import WalWindow, parse_wal_window
from walguard.inventory.load import Target
from walguard.part import Part
from walguard.policy.model import Connect, Policy


def collector_command(policy: Policy, connect: Connect, token: str) -> str:
    """The remote command line: parameters as quoted env assignments, the script as one quoted
    argument. Inventory values never reach the remote shell unquoted."""
    env = {
        "WG_TOKEN": token,
        "WG_ARCHIVE_DIR": policy.archive_dir,
        "WG_SERVICE": policy.postgres_service,
        "WG_T": str(max(1, connect.command_timeout_s // 2)),
        "WG_HEADERS": "5",
        "WG_PG_OWNER": policy.archive_owner,
        "WG_RESTORE_USER": policy.restore_user or policy.archive_owner,
        "WG_PG_SOCKET_DIR": connect.pg_socket_dir,
        "WG_PG_PORT": str(connect.pg_port),
    }
    if policy.archive_check_command:
        env["WG_ARCHIVE_CHECK"] = policy.archive_check_command
    if policy.backup_source == "pg_basebackup" and policy.base_backup_dir:
        env["WG_BACKUP_DIR"] = policy.base_backup_dir
        env["WG_BACKUP_VERIFY"] = policy.base_backup_verify
    if policy.backup_source == "pgbackrest" and policy.pgbackrest_stanza:
        # Validated as a name (walguard.policy.model), quoted here, an argument there.
        env["WG_PGBACKREST_STANZA"] = policy.pgbackrest_stanza
    start_conf = start_conf_path(policy.postgres_service)
    if start_conf:
        env["WG_START_CONF"] = start_conf
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assignments} /bin/sh -c {shlex.quote(collector.script())}"


def collect(
    target: Target,
    *,
    active_probe: bool = False,
    probe_wait_s: float = 60,
    then: Callable[[Connection, HostFacts], HostFacts] | None = None,
    conn: Connection | None = None,
    cancel: Cancel | None = None,
) -> HostFacts:
    """This host's facts. With `conn` (already open) the facts are read over it and it is left
    open; otherwise a connection is opened and closed here (and ended early by `cancel`).
    `then` runs over the same connection once the facts are read (the opt-in restore drill,
    walguard.drill.run.drill_step, given by the audit above)."""
    started = time.monotonic()
    own = conn is None
    conn = conn or Connection(target, cancel)
    policy, connect = target.policy, target.connect
    evidence: dict[str, str] = {}
    raw: dict[str, bytes] = {}
    try:
        token = f"@@WG-{secrets.token_hex(8)}@@"
        try:
            command = collector_command(policy, connect, token)
            # PostgreSQL's facts come in the same round trip, from psql run right after the
            # collector as the login user (never under sudo), framed with the same token.
            pg_then = "" if connect.pg_dsn else pgfacts.psql_section(connect, token)
            if own:
                if active_probe and not connect.pg_dsn:
                    # The probe talks to the server over the forwarded socket: the master
                    # forwards it from its start, no ssh process of its own for it.
                    conn.plan_forward(*_pg_socket(connect))
                # The collector is the master's own first session: one ssh process per host.
                reply = conn.open_running(command, become=target.become, then=pg_then)
            else:
                reply = conn.run_raw(command, become=target.become, then=pg_then)
        except FactUnavailable as exc:
            # The reason is ssh's, said once: the host's name stands beside it wherever shown.
            attempts = [a.as_dict() for a in conn.attempts]
            return HostFacts.unreachable(
                target.name,
                target.address,
                str(exc),
                round_trips=conn.round_trips,
                attempts=tuple(attempts),
                account=ssh_words.account(str(exc), attempts),
            )
        out, err = reply.stdout, reply.stderr
        evidence["collector"] = out
        raw["collector"] = reply.raw_stdout
        if err.strip():
            evidence["collector_stderr"] = err
        sections = split_sections(out, token)
        archive: Part[ArchiveDir]
        try:
            archive = Part(parse_archive_dir(sections, policy.archive_dir))
        except FactUnavailable as exc:
            archive = Part(error=f"{target.name}: {exc}")
        selinux: Part[SelinuxFacts]
        try:
            selinux = Part(parse_selinux(sections))
        except FactUnavailable as exc:
            selinux = Part(error=f"{target.name}: {exc}")
        platform = parse_platform(sections)
        backups = _backups(sections, policy, target.name)
        window: Part[WalWindow]
        try:
            window = Part(parse_wal_window(sections))
        except FactUnavailable as exc:
            window = Part(error=f"{target.name}: {exc}")
        if platform.journal.value is not None:
            evidence["journal_errors"] = "".join(f"{line}\n" for line in platform.journal.value)
        # The operator's own views, each in its own evidence file (also inside collector.txt).
        for name in ("service_status", "service_journal", "listeners", "nft_ruleset"):
            if name in sections:
                evidence[name] = sections[name].output + "\n"
        service = sections.get("service_active")
        service_part: Part[str] = (
            Part(service.output.strip() or "unknown")
            if service is not None
            else Part(error=f"{target.name}: collector output has no service_active section")
        )
        pg: Part[Postgres]
        probe: Part[ProbeResult] = Part(error="--active-probe not given")
        try:
            pg_value, pg_raw = _pg_facts(conn, target, sections, evidence)
            pg = Part(pg_value)
            evidence["postgresql"] = pg_raw
            if active_probe:
                # Opt-in and not a fact: it changes the server's state (a WAL switch).
                try:
                    conninfo = _pg_conninfo(conn, target, connect)
                    probe = Part(
                        pgfacts.active_probe(
                            conninfo, timeout_s=connect.connect_timeout_s, wait_s=probe_wait_s
                        )
                    )
                    evidence["active_probe"] = repr(probe.value)
                except FactUnavailable as exc:
                    probe = Part(error=f"{target.name}: {exc}")
        except FactUnavailable as exc:
            pg = Part(error=f"{target.name}: {exc}")
            probe = Part(error=f"{target.name}: {exc}")
            evidence["postgresql"] = str(exc)
        evidence["duration_s"] = f"{time.monotonic() - started:.3f}"
        found = HostFacts(
            target.name,
            target.address,
            True,
            None,
            archive,
            pg,
            service_part,
            conn.round_trips,
            MappingProxyType(evidence),
            probe,
            selinux,
            MappingProxyType(raw),
            tuple(a.as_dict() for a in conn.attempts),
            platform,
            backups=backups,
            window=window,
        )
        return then(conn, found) if then is not None else found
    finally:
        if own:
            conn.close()


def _backups(
    sections: dict[str, Section], policy: Policy, host: str
) -> Part[BaseBackups | PgBackRestInfo]:
    source = policy.backup_source
    if source is None:
        return Part(error=NO_BACKUP_SOURCE)
    if source not in ("pg_basebackup", "pgbackrest"):
        return Part(error=unread_backup_source(source))
    try:
        if source == "pgbackrest":
            if policy.pgbackrest_stanza is None:  # not met: the policy requires it
                raise FactUnavailable("cannot verify: no walguard_pgbackrest_stanza")
            return Part(parse_pgbackrest_info(sections, policy.pgbackrest_stanza))
        return Part(parse_backups(sections, policy.base_backup_dir or ""))
    except FactUnavailable as exc:
        return Part(error=f"{host}: {exc}")


# timeout(1)'s statuses for a command it could not run (126) or find (127).
_NO_PSQL = (126, 127)


def _pg_facts(
    conn: Connection, target: Target, sections: dict[str, Section], evidence: dict[str, str]
) -> tuple[Postgres, str]:
    """The server's facts: from psql's section of the collector's round trip; over the DSN the
    inventory gives (one more round trip); or, where psql on the host could not answer, over
    the server's socket forwarded to psycopg here (one more round trip)."""
    connect = target.connect
    if connect.pg_dsn:
        conn.round_trips += 1
        return pgfacts.fetch(connect.pg_dsn, timeout_s=connect.connect_timeout_s)
    section = sections.get(pgfacts.SECTION)
    try:
        if section is None:
            raise FactUnavailable("postgresql (psql): the collector's output has no psql section")
        return pgfacts.parse_psql_section(section.rc, section.output)
    except FactUnavailable as psql_error:
        if section is not None and section.rc not in _NO_PSQL:
            raise  # psql asked the server: its answer is the server's
        # Where psql cannot run on the host (not installed, not on the login user's PATH)
        # the server's socket may still be reached: ask over the forward before calling it
        # an ERROR.
        try:
            conninfo = _pg_conninfo(conn, target, connect)
            conn.round_trips += 1
            found = pgfacts.fetch(conninfo, timeout_s=connect.connect_timeout_s)
        except FactUnavailable as forward_error:
            raise FactUnavailable(f"{psql_error}; {forward_error}") from None
        evidence["postgresql_transport"] = f"the socket forwarded over ssh ({psql_error})"
        return found


def _pg_conninfo(conn: Connection, target: Target, connect: Connect) -> str:
    if connect.pg_dsn:
        return connect.pg_dsn
    local_dir = conn.forward_unix_socket(*_pg_socket(connect))
    from psycopg.conninfo import make_conninfo  # only on this road (walguard.facts.postgres)

    # Peer auth: the forwarded socket reaches the server as the SSH login user.
    return make_conninfo(
        host=local_dir, port=connect.pg_port, dbname="postgres", user=target.user or ""
    )


def _pg_socket(connect: Connect) -> tuple[str, str]:
    """The server's unix socket on the host, and the name its forward has here (libpq finds
    `.s.PGSQL.PORT` in the directory it is given)."""
    name = f".s.PGSQL.{connect.pg_port}"
    return f"{connect.pg_socket_dir.rstrip('/')}/{name}", name
