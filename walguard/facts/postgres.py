"""PostgreSQL facts in one query, through psycopg over the host's SSH connection.

The server's unix socket is forwarded over the SSH master connection, so psycopg reaches the
server as the SSH login user (peer auth, the audit role with pg_monitor): no password, no TCP
listener needed. The session is read-only with a statement timeout. A TLS DSN from the inventory
(`walguard_pg_dsn`) is used instead when given.
"""

from __future__ import annotations

import json
import shlex
import time
from typing import Any

from walguard.errors import FactUnavailable
from walguard.facts.postgres_state import Archiver, Postgres, ProbeResult, ReadyFile, Setting
from walguard.policy.model import Connect

SETTINGS = (
    "archive_mode",
    "archive_command",
    "archive_library",
    "archive_timeout",
    "wal_level",
    "listen_addresses",
    "data_directory",
    "wal_segment_size",
    "port",
    "ssl",
    # basic_archive's own setting: in pg_settings only while the library is loaded.
    "basic_archive.archive_directory",
)

# One statement, one round trip: everything as one JSON document.
QUERY = """
SELECT json_build_object(
  'version', current_setting('server_version'),
  'in_recovery', pg_is_in_recovery(),
  'settings', (SELECT json_agg(json_build_object('name', name, 'setting', setting,
                 'pending_restart', pending_restart, 'source', source))
               FROM pg_settings WHERE name = ANY(%(names)s) OR pending_restart),
  'archiver', (SELECT json_build_object(
                 'archived_count', archived_count, 'last_archived_wal', last_archived_wal,
                 'last_archived_age_s', extract(epoch FROM now() - last_archived_time),
                 'last_archived_time', last_archived_time::text,
                 'last_archived_epoch', extract(epoch FROM last_archived_time),
                 'failed_count', failed_count, 'last_failed_wal', last_failed_wal,
                 'last_failed_age_s', extract(epoch FROM now() - last_failed_time),
                 'last_failed_time', last_failed_time::text,
                 'stats_reset', stats_reset::text)
               FROM pg_stat_archiver),
  'status_files', (SELECT coalesce(json_agg(json_build_object('name', name,
                 'age_s', extract(epoch FROM now() - modification))), '[]'::json)
               FROM pg_ls_archive_statusdir()),
  'current_walfile', CASE WHEN pg_is_in_recovery() THEN NULL
                          ELSE pg_walfile_name(pg_current_wal_lsn()) END,
  'timeline', (SELECT timeline_id FROM pg_control_checkpoint()),
  'system_identifier', (SELECT system_identifier::text FROM pg_control_system())
)
"""


def fetch(
    conninfo: str, *, timeout_s: int, statement_timeout_ms: int = 5000
) -> tuple[Postgres, str]:
    """Run the query; return the parsed facts and the raw JSON (evidence)."""
    # psycopg is imported where it is used: most audits read the server with psql on the host
    # and never need it (its import is a tenth of a second of every audit's start).
    import psycopg

    try:
        with psycopg.connect(
            conninfo,
            connect_timeout=timeout_s,
            application_name="walguard",
            options=f"-c statement_timeout={statement_timeout_ms} "
            "-c default_transaction_read_only=on",
            autocommit=True,
        ) as conn:
            row = conn.execute(QUERY, {"names": list(SETTINGS)}).fetchone()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FactUnavailable(f"postgresql: {first}") from None
    if row is None:
        raise FactUnavailable("postgresql: the facts query returned nothing")
    raw = json.dumps(row[0], sort_keys=True)
    return parse(row[0]), raw


def psql_command(connect: Connect, statement_timeout_ms: int = 5000) -> str:
    """The same query through psql on the host, as the SSH login user (peer auth): the fallback
    when the socket forward is refused (e.g. SELinux does not let sshd_t reach PostgreSQL's
    socket). Read-only and time-limited like the psycopg session."""
    names = ", ".join(f"'{n}'" for n in SETTINGS)  # constants, not user input
    query = " ".join(QUERY.replace("%(names)s", f"ARRAY[{names}]").split())
    options = f"-c statement_timeout={statement_timeout_ms} -c default_transaction_read_only=on"
    return (
        f"env PGOPTIONS={shlex.quote(options)} PGAPPNAME=walguard "
        # The audited cluster's socket directory and port, never whatever psql defaults to.
        f"psql -XAtq -v ON_ERROR_STOP=1 -h {shlex.quote(connect.pg_socket_dir)} "
        f"-p {connect.pg_port} -d postgres -c {shlex.quote(query)}"
    )


# The name of the query's section in a host's framed output (not one of collect.sh's: it is run
# after the collector, as the login user).
SECTION = "postgresql"


def psql_section(connect: Connect, token: str) -> str:
    """The query as a framed section of the collector's round trip: psql on the host as the
    SSH login user (peer auth), bounded like every collector command, its output (stdout and
    stderr) between `TOKEN BEGIN postgresql` and `TOKEN END postgresql RC`."""
    timeout_s = max(1, connect.command_timeout_s // 2)
    return (
        f"printf '%s BEGIN {SECTION}\\n' {shlex.quote(token)}; "
        f"PGCONNECT_TIMEOUT={connect.connect_timeout_s} timeout {timeout_s} "
        f"{psql_command(connect)} 2>&1; "
        f"printf '\\n%s END {SECTION} %s\\n' {shlex.quote(token)} $?"
    )


def parse_psql_section(rc: int, output: str) -> tuple[Postgres, str]:
    """The facts from psql's section. Its one JSON line is told from anything else psql
    printed (a server WARNING comes on stderr, and stderr is in the section too) by being
    JSON: a JSON text has no raw newline in it. psql's failure is its own first line
    ("psql: error: connection to server on socket ... failed: ...")."""
    if rc == 124:
        raise FactUnavailable("postgresql: psql timed out (no answer within its timeout)")
    if rc == 0:
        for line in reversed(output.splitlines()):
            if line.startswith("{"):
                return parse_psql_output(0, line, "")
        raise FactUnavailable(f"postgresql: psql printed no facts: {output.strip()[:120]!r}")
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    raise FactUnavailable(f"postgresql: {lines[0] if lines else f'psql exit status {rc}'}")


def parse_psql_output(rc: int, out: str, err: str) -> tuple[Postgres, str]:
    if rc != 0:
        lines = [ln for ln in (err or out).strip().splitlines() if ln.strip()]
        raise FactUnavailable(f"postgresql (psql): {lines[0] if lines else f'exit {rc}'}")
    try:
        doc = json.loads(out)
    except ValueError:
        raise FactUnavailable(
            f"postgresql (psql): unparsable output {out.strip()[:120]!r}"
        ) from None
    return parse(doc), json.dumps(doc, sort_keys=True)


def active_probe(conninfo: str, *, timeout_s: int, wait_s: float) -> ProbeResult:
    """Switch to a new WAL segment and wait, bounded, until the archiver reports it archived.

    Not read-only: txid_current() makes the commit record that gives pg_switch_wal() something to
    close, so an idle server switches too. Needs EXECUTE on pg_switch_wal() for the audit role.
    """
    import psycopg

    try:
        with psycopg.connect(
            conninfo, connect_timeout=timeout_s, application_name="walguard probe", autocommit=True
        ) as conn:
            conn.execute("SELECT txid_current()")
            row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
            if row is None:
                raise FactUnavailable("postgresql: pg_switch_wal() returned nothing")
            segment = str(row[0])
            started = time.monotonic()
            while True:
                stat = conn.execute(
                    "SELECT last_archived_wal, failed_count, last_failed_wal FROM pg_stat_archiver"
                ).fetchone()
                waited = time.monotonic() - started
                last = stat[0] if stat else None
                # Segment names of one timeline sort in WAL order.
                if (
                    last is not None
                    and len(last) == 24
                    and last[:8] == segment[:8]
                    and last >= segment
                ):
                    return ProbeResult(segment, True, waited, str(last))
                if waited >= wait_s:
                    return ProbeResult(segment, False, waited, str(last or ""))
                time.sleep(0.25)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FactUnavailable(f"postgresql (active probe): {first}") from None


def parse(doc: Any) -> Postgres:
    """From the query's JSON document; anything missing or mistyped is FactUnavailable."""
    try:
        settings = {
            s["name"]: Setting(
                s["name"], str(s["setting"]), bool(s["pending_restart"]), str(s["source"])
            )
            for s in doc["settings"] or []
        }
        a = doc["archiver"]
        archiver = Archiver(
            archived_count=int(a["archived_count"]),
            last_archived_wal=a["last_archived_wal"],
            last_archived_age_s=_opt_float(a["last_archived_age_s"]),
            failed_count=int(a["failed_count"]),
            last_failed_wal=a["last_failed_wal"],
            last_failed_age_s=_opt_float(a["last_failed_age_s"]),
            last_archived_time=a["last_archived_time"],
            last_failed_time=a["last_failed_time"],
            last_archived_epoch=_opt_float(a.get("last_archived_epoch")),
        )
        status = tuple(ReadyFile(str(f["name"]), float(f["age_s"])) for f in doc["status_files"])
        segment = int(settings["wal_segment_size"].setting) if "wal_segment_size" in settings else 0
        current = doc["current_walfile"]
        # Just after a promotion the checkpoint still names the old timeline; the WAL being
        # written names the new one (a standby has no current file: its checkpoint's it is).
        checkpoint_timeline = int(doc["timeline"])
        timeline = int(current[:8], 16) if current else checkpoint_timeline
        return Postgres(
            version=str(doc["version"]),
            in_recovery=bool(doc["in_recovery"]),
            settings=settings,
            archiver=archiver,
            status_files=status,
            current_walfile=current,
            timeline=timeline,
            segment_size=segment,
            system_identifier=int(doc.get("system_identifier") or 0),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FactUnavailable(f"postgresql: unexpected facts document ({exc!r})") from None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
