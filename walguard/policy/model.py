"""walguard's policy: the values an audit expects on each host, as data.

Every field of `Policy` has a default that suits a stock Debian PostgreSQL host. An inventory
overrides a field for a host or a group with the variable ``walguard_<field>``, under the usual
Ansible precedence (see `walguard.inventory.load`). Types are checked strictly: a quoted ``"15"`` is
not an integer and ``"yes"`` is not a boolean, because an audit that guesses what a policy
meant can pass a host it should have failed. An unknown ``walguard_*`` variable is an error,
with the closest known name suggested, because a misspelt override silently leaves the default
in force.

Variables (type, default: meaning)
----------------------------------
walguard_archive_dir (absolute path, "/pg_archive")
    The directory ``archive_command`` copies WAL segments into. Written normalised (no ``.``,
    ``..``, ``//`` or trailing ``/``), and never a system directory (``/``, ``/var/lib``,
    ``/srv``, a home directory, anything under ``/etc``, ``/usr``, ``/tmp`` ...): ``--remediate``
    makes it the policy's owner and mode. ``/srv/pg_archive`` or ``/var/lib/pgsql/archive``
    will do.
walguard_archive_owner (user name, "postgres")
    The user that must own the archive directory.
walguard_archive_group (group name, "postgres")
    The group that must own the archive directory.
walguard_restore_user (user name or null, null)
    The user ``restore_command`` runs as, who must be able to read every archived segment and
    history file (WG-ACT-008); null: the archive owner (the cluster's owner, as a stock
    PostgreSQL host runs recovery).
walguard_archive_allowed_modes (list of octal modes, ["0700", "0750"])
    The permission modes the archive directory may have. Write them as quoted strings
    (``"0750"``); integers are accepted as numeric modes up to 0777 (YAML reads an unquoted
    ``0750`` as octal, but ``750`` as decimal, which is why larger integers are refused).
    Normalised to four-digit octal strings.
walguard_rpo_minutes (number > 0, 15)
    Recovery point objective: the newest archived segment may be at most this old, and no commit
    may wait longer than this to be archived (WG-RST-002). Fractions are allowed (0.5 is thirty
    seconds).
walguard_ready_backlog_max (integer >= 0, 10)
    The most ``.ready`` files (segments waiting to be archived) tolerated in ``pg_wal``.
walguard_archive_min_free_percent (integer 0-100, 10)
    The least free space, in percent, the archive filesystem must have.
walguard_archive_command_approved (list of strings, [])
    archive_command values (verbatim) or archive_library names that were reviewed and are
    accepted although walguard cannot read what they do (an in-house wrapper script). WG-ARC-003
    and WG-ARC-004 pass them and say in the report that the policy approved them.
walguard_archive_check_command (command line or null, null)
    Where WAL is archived by a tool into its own repository (pgBackRest, WAL-G, Barman,
    pg_probackup), walguard cannot see the segments; this names the tool's own check (e.g.
    ``pgbackrest --stanza=main check``), run on the host as the archive owner, whose output and
    exit status then decide WG-ACT-004, WG-ACT-005 and WG-ACT-007 (walguard.archive.check_output:
    a check that prints failure but exits 0 FAILs; one that prints no status is ERROR). It must
    start with one of those tools and hold no shell syntax. Without it those controls are ERROR
    ("cannot verify").
walguard_standby_archiving (boolean, false)
    A standby must archive too (``archive_mode = always``). When false, a standby's archiver
    controls are NOT APPLICABLE ("standby: the primary archives").
walguard_require_dedicated_mount (boolean, true)
    The archive directory must be its own mount point, so a full archive cannot fill the
    data directory's filesystem (and the other way round).
walguard_postgres_service (systemd unit, "postgresql.service")
    The unit that runs the audited cluster, e.g. ``postgresql@15-main.service``.
walguard_pg_socket_dir (absolute path, "/var/run/postgresql")
    The directory of the server's Unix socket, forwarded over SSH for SQL checks.
walguard_pg_port (integer 1-65535, 5432)
    The server's port (also names the Unix socket file).
walguard_pg_dsn (string or null, null)
    A libpq connection string (e.g. with ``sslmode=verify-full``) to use for SQL checks instead
    of forwarding the Unix socket over SSH.
walguard_known_hosts_file (path or null, null)
    The known_hosts file for strict SSH host-key checking; null means the SSH default.
walguard_connect_timeout_s (integer > 0, 10)
    Seconds to wait for an SSH (or SQL) connection.
walguard_command_timeout_s (integer > 0, 60)
    Seconds any one remote command may run.
walguard_segment_size_bytes (power of two, 1 MiB-1 GiB, 16777216)
    The cluster's WAL segment size (``initdb --wal-segsize``).
walguard_ssh_retries (integer 0-10, 2)
    How many more times to try establishing a host's SSH master connection after a failed
    attempt (with backoff). Only the connection is retried, never a command.
walguard_remediation_timeout_s (integer > 0, 900)
    Seconds one remediation script may run (a restart or ``restorecon -R`` on a large archive
    takes longer than an ordinary command); a script that hits it is reported as timed out.
walguard_change_window (change window or list of them, [])
    When ``--remediate=apply`` may run a script that restarts PostgreSQL on this host (with
    ``--allow-restart`` and ``--change-ref``): ``DAYS HH:MM-HH:MM ZONE`` in the zone's local time,
    such as ``Sat 01:00-05:00 Europe/Berlin``, ``Mon-Fri 22:00-02:00 UTC`` (crossing midnight:
    it belongs to the day it starts on) or ``Sat,Sun 00:00-06:00 Europe/London``; any one of
    several will do (`walguard.policy.change_window`). Empty: no window, so no restart.
    ``--change-window`` replaces it for a run.
walguard_restart_timeout_s (integer > 0, 120)
    A staged restart's gate after it: the server must accept connections again (and its standbys
    stream again) within this many seconds, else the host is rolled back and the rollout stops.
walguard_restart_max_lag_s (number >= 0, 60)
    A staged restart's gate before it: the host's standbys must all be streaming, none replaying
    more than this many seconds behind.
walguard_restart_min_free_pct (integer 0-100, 10)
    A staged restart's gate before it: the data directory's and the archive's volumes must each
    have at least this much free space.
walguard_rollback_owner (name or e-mail, null)
    Who rolls a restart back on this host if it goes wrong (``Jane Doe <jane.doe@bank.example>``,
    one line of at most 120 characters): recorded with every disruptive remediation and shown in
    the report.

walguard_selinux_required (boolean, true)
    SELinux must be enforcing on the host. When false, the SELinux controls are NOT APPLICABLE
    there, and the report says so.
walguard_selinux_type (policy name, "targeted")
    The SELinux policy type expected loaded and configured (RHEL: targeted; Debian: default).
walguard_selinux_archive_type (SELinux type, "postgresql_db_t")
    The label the archive directory and the archived files must carry.
walguard_selinux_postgres_domain (SELinux domain, "postgresql_t")
    The domain PostgreSQL must run confined in.

walguard_zones (mapping of zone name to {expect_postgres: bool}, {})
    The network zones PostgreSQL is judged from, and whether each must reach it (true) or be
    refused (false). Each zone needs a probe host in the inventory (``walguard_zone``). Fewer
    than two zones fails WG-NET-004: one vantage point proves nothing about segmentation.
walguard_zone (zone name or null, null)
    Set on a probe host: it is the vantage point of that zone. A probe host is reached over SSH
    like any host but is not audited as a database host; from it walguard makes a real
    PostgreSQL connection attempt to every database host.
walguard_journal_noise (list of regular expressions, [])
    Known-noise journal errors (matched against the normalised line) that WG-SYS-004 ignores.
walguard_listen_addresses (list of addresses or null, null)
    Where PostgreSQL must listen (and nowhere else). null: loopback plus the host's inventory
    address (``ansible_host``).
walguard_allowed_listeners (list of PROCESS:PORT, ["sshd:22", "chronyd:323"])
    Listening sockets other than PostgreSQL's that are expected (PORT may be ``*``).
walguard_firewall_required (boolean, true)
    A host firewall (nftables or firewalld) must be active with a ruleset loaded.
walguard_clock_max_offset_ms (integer > 0, 100)
    The largest clock offset from the NTP source tolerated, in milliseconds.
walguard_postgres_package_versions (list of glob patterns, [])
    Package versions allowed for the server's package (e.g. ``["15.1[0-9]*"]``). Empty: the
    running server's major version.
walguard_tls_required (boolean, false)
    The server must have TLS on; when false and TLS is off, WG-IDN-003 is NOT APPLICABLE.
walguard_tls_ca_file (absolute path or null, null)
    The CA certificate (PEM, on the machine running walguard) server certificates must chain to;
    also used by the zone probes' ``sslmode=verify-full`` connections.
walguard_tls_name (name or null, null)
    The name clients use for the server (the certificate must match it); null: the inventory
    host name.
walguard_tls_min_days (integer >= 0, 30)
    The server certificate must stay valid at least this many more days.
walguard_base_backup_dir (absolute path or null, null)
    Where pg_basebackup writes this cluster's base backups, one directory per backup (plain
    format, with its backup_manifest). WG-RST-001 reads them, as the archive owner: without it
    (or another backup source) WG-RST-001 is ERROR ("cannot verify").
walguard_base_backup_source (pg_basebackup, pgbackrest, barman, wal-g or null, null)
    What takes this cluster's base backups, which WG-RST-001 reads: ``pg_basebackup`` (the
    directories in ``walguard_base_backup_dir``, which it needs; null means it when that is set)
    or ``pgbackrest`` (``pgbackrest --stanza=S --output=json info`` as the archive owner, judged
    by what it prints). walguard does not read Barman's or WAL-G's backups yet: with ``barman``
    or ``wal-g`` WG-RST-001 is ERROR ("cannot verify"), never a guess.
walguard_pgbackrest_stanza (stanza name or null, null)
    The pgBackRest stanza of this cluster, required with ``walguard_base_backup_source:
    pgbackrest`` and refused with any other source. Letters, digits, ``.``, ``_`` and ``-``,
    starting with a letter or digit (it becomes an argument of the command run on the host).
walguard_base_backup_max_age_hours (integer > 0, 26)
    The newest base backup must be younger than this (a daily backup, with two hours' slack).
walguard_base_backup_verify (checksums or sizes, checksums)
    How the newest backup is verified by ``pg_verifybackup``: every file's checksum against the
    manifest, or (for backups too large to read at every audit) only that every file is there
    with its size. The WAL the backup needs is always parsed from the archive.
walguard_rto_minutes (number > 0, 60)
    Recovery time objective: the restore drill's restore (copy, replay, start) must take at most
    this long (WG-RST-004). Fractions are allowed (0.5 is thirty seconds).
walguard_restore_scratch_dir (plain absolute path or null, null)
    Where ``--restore-drill`` restores into, on the host itself: a directory that exists, outside
    the data directory, the archive and the backups, ideally on its own volume. Each drill makes
    a ``walguard-drill-*`` directory in it and removes it again (one a killed drill left is
    removed by the next); ``.walguard-drill.lock`` in it keeps drills one at a time. Without it
    the drill is ERROR ("cannot drill").
walguard_restore_host (inventory host name or null, null)
    Where ``--restore-drill`` restores this host's backups: another host of the inventory (a
    segregated restore system, DORA Art. 12(3)) that reads this host's archive and base backups,
    e.g. from a read-only share. The canaries are written and the WAL switched on this host; the
    restore runs on that host, into its own ``walguard_restore_scratch_dir``, with its own
    cluster owner and resource limits, and needs the same PostgreSQL major version's server
    programs there (Debian's or PGDG's layout). Null: on this host itself.
walguard_restore_archive_dir (plain absolute path or null, null)
    Where the restore host reads this host's WAL archive; null: the same path as here.
walguard_restore_backup_dir (plain absolute path or null, null)
    Where the restore host reads this host's base backups; null: ``walguard_base_backup_dir``.
    These three are plain paths (letters, digits and ``/ . _ + -``): the drill puts them into the
    scratch server's restore_command, which PostgreSQL runs through a shell.
walguard_restore_canary_db (database name, "postgres")
    The database the drill's canary rows go into (table ``walguard_restore_drill``).
walguard_restore_timeout_s (integer >= 60, 1800)
    How long one drill may take in all; the scratch is removed when it is up.
walguard_restore_memory_max (size, "2G")
    The scratch cluster's memory limit (systemd ``MemoryMax``, in its own scope).
walguard_restore_cpu_quota (percentage, "100%")
    The scratch cluster's CPU limit (systemd ``CPUQuota``; 100% is one core); it also runs at
    nice 10 and idle I/O priority.

walguard_checks_dirs (list of directories, [])
    Directories of the user's own controls, audited beside the shipped ones (as ``--checks``),
    relative to the inventory's directory. Controls are collected once per run, so it must be
    the same for every host: set it for ``all`` (see `walguard.audit.extra_checks`).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from walguard.errors import one_line
from walguard.policy.validators import (
    Invalid,
    absolute_path_value,
    archive_dir_value,
    boolean,
    change_windows_value,
    check_command_value,
    contact_value,
    integer,
    listeners_value,
    matching,
    modes_value,
    non_negative_number,
    one_of,
    optional_value,
    patterns_value,
    plain_path_value,
    positive_number,
    segment_size_value,
    strings_value,
    text_value,
    word_value,
    zones_value,
)

_PREFIX = "walguard_"

# What may take a host's base backups (walguard_base_backup_source); WG-RST-001 reads the first
# two and says it cannot verify the others.
BACKUP_SOURCES = ("pg_basebackup", "pgbackrest", "barman", "wal-g")


class PolicyError(Exception):
    """A policy variable with a bad value or an unknown name, in one line.

    The parts are kept as attributes so that `walguard.inventory.load` can point at the file and
    line
    where the variable was set.
    """

    def __init__(self, host: str, key: str, problem: str, source: str | None = None) -> None:
        self.host = host
        self.key = key
        self.problem = problem
        self.source = source
        where = f" (set in {source})" if source else ""
        super().__init__(one_line(f"host {host}: {key}{where}: {problem}"))

    def __reduce__(self) -> tuple[type[PolicyError], tuple[str, str, str, str | None]]:
        # The default reduce would call __init__ with the message only; pytest-xdist pickles.
        return (type(self), (self.host, self.key, self.problem, self.source))


@dataclass(frozen=True)
class Policy:
    """What one host is expected to be: see the module docstring for each field."""

    archive_dir: str = "/pg_archive"
    archive_owner: str = "postgres"
    archive_group: str = "postgres"
    restore_user: str | None = None
    archive_allowed_modes: tuple[str, ...] = ("0700", "0750")
    rpo_minutes: float = 15
    ready_backlog_max: int = 10
    archive_min_free_percent: int = 10
    archive_command_approved: tuple[str, ...] = ()
    archive_check_command: str | None = None
    standby_archiving: bool = False
    require_dedicated_mount: bool = True
    postgres_service: str = "postgresql.service"
    segment_size_bytes: int = 16777216
    # Remediation that restarts PostgreSQL: when, and who rolls it back.
    change_window: tuple[str, ...] = ()
    rollback_owner: str | None = None
    restart_timeout_s: int = 120
    restart_max_lag_s: float = 60
    restart_min_free_pct: int = 10
    selinux_required: bool = True
    selinux_type: str = "targeted"
    selinux_archive_type: str = "postgresql_db_t"
    selinux_postgres_domain: str = "postgresql_t"
    # The validation matrix (platform, network, identity).
    zones: tuple[tuple[str, bool], ...] = ()
    zone: str | None = None
    journal_noise: tuple[str, ...] = ()
    listen_addresses: tuple[str, ...] | None = None
    allowed_listeners: tuple[str, ...] = ("sshd:22", "chronyd:323")
    firewall_required: bool = True
    clock_max_offset_ms: int = 100
    postgres_package_versions: tuple[str, ...] = ()
    tls_required: bool = False
    tls_ca_file: str | None = None
    tls_name: str | None = None
    tls_min_days: int = 30
    # Restorability (WG-RST).
    base_backup_dir: str | None = None
    base_backup_source: str | None = None  # null: pg_basebackup where base_backup_dir is set
    pgbackrest_stanza: str | None = None
    base_backup_max_age_hours: int = 26
    base_backup_verify: str = "checksums"
    rto_minutes: float = 60
    restore_scratch_dir: str | None = None
    restore_host: str | None = None
    restore_archive_dir: str | None = None
    restore_backup_dir: str | None = None
    restore_canary_db: str = "postgres"
    restore_timeout_s: int = 1800
    restore_memory_max: str = "2G"
    restore_cpu_quota: str = "100%"

    @property
    def backup_source(self) -> str | None:
        """What WG-RST-001 reads: the source the policy names, else pg_basebackup where a base
        backup directory is named, else none."""
        if self.base_backup_source is not None:
            return self.base_backup_source
        return "pg_basebackup" if self.base_backup_dir is not None else None


@dataclass(frozen=True)
class Connect:
    """How to reach one host and its server (not what to expect of them): the transport and
    the collector take this, never the expectations."""

    pg_socket_dir: str = "/var/run/postgresql"
    pg_port: int = 5432
    pg_dsn: str | None = None
    known_hosts_file: str | None = None
    connect_timeout_s: int = 10
    command_timeout_s: int = 60
    ssh_retries: int = 2
    remediation_timeout_s: int = 900


_FIELD_CHECKS: dict[str, Callable[[Any], Any]] = {
    "archive_dir": archive_dir_value,
    "archive_owner": word_value,
    "archive_group": word_value,
    "restore_user": optional_value(word_value),
    "archive_allowed_modes": modes_value,
    "rpo_minutes": positive_number,
    "ready_backlog_max": integer(minimum=0),
    "archive_min_free_percent": integer(minimum=0, maximum=100),
    "archive_command_approved": strings_value,
    "archive_check_command": optional_value(check_command_value),
    "standby_archiving": boolean,
    "require_dedicated_mount": boolean,
    "postgres_service": word_value,
    "pg_socket_dir": absolute_path_value,
    "pg_port": integer(minimum=1, maximum=65535),
    "pg_dsn": optional_value(text_value),
    "known_hosts_file": optional_value(text_value),
    "connect_timeout_s": integer(minimum=1),
    "command_timeout_s": integer(minimum=1),
    "ssh_retries": integer(minimum=0, maximum=10),
    "remediation_timeout_s": integer(minimum=1),
    "change_window": change_windows_value,
    "rollback_owner": optional_value(contact_value),
    "restart_timeout_s": integer(minimum=1),
    "restart_max_lag_s": non_negative_number,
    "restart_min_free_pct": integer(minimum=0, maximum=100),
    "segment_size_bytes": segment_size_value,
    "selinux_required": boolean,
    "selinux_type": word_value,
    "selinux_archive_type": word_value,
    "selinux_postgres_domain": word_value,
    "zones": zones_value,
    "zone": optional_value(word_value),
    "journal_noise": patterns_value,
    "listen_addresses": optional_value(strings_value),
    "allowed_listeners": listeners_value,
    "firewall_required": boolean,
    "clock_max_offset_ms": integer(minimum=1),
    "postgres_package_versions": strings_value,
    "tls_required": boolean,
    "tls_ca_file": optional_value(absolute_path_value),
    "tls_name": optional_value(word_value),
    "tls_min_days": integer(minimum=0),
    "base_backup_dir": optional_value(absolute_path_value),
    "base_backup_source": optional_value(one_of(*BACKUP_SOURCES)),
    # An argument of the collector's pgbackrest command line (quoted there too): a name only.
    "pgbackrest_stanza": optional_value(
        matching(
            r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}",
            "a pgBackRest stanza name such as main (letters, digits, '.', '_', '-')",
        )
    ),
    "base_backup_max_age_hours": integer(minimum=1),
    "base_backup_verify": one_of("checksums", "sizes"),
    "rto_minutes": positive_number,
    "restore_scratch_dir": optional_value(plain_path_value),
    "restore_host": optional_value(word_value),
    "restore_archive_dir": optional_value(plain_path_value),
    "restore_backup_dir": optional_value(plain_path_value),
    # A name, never a connection string: psql -d would read "host=..." as one.
    "restore_canary_db": matching(
        r"[A-Za-z_][A-Za-z0-9_]{0,62}", "a database name such as postgres"
    ),
    "restore_timeout_s": integer(minimum=60),
    "restore_memory_max": matching(r"[1-9][0-9]*[KMGT]?", "a size such as 2G"),
    "restore_cpu_quota": matching(r"[1-9][0-9]*%", "a percentage such as 100%"),
}

# Read by checks straight from the host's variables; validated here so typos still fail early.
_EXTRA_CHECKS: dict[str, Callable[[Any], Any]] = {"walguard_checks_dirs": strings_value}

_POLICY_FIELDS = frozenset(f.name for f in dataclasses.fields(Policy))
_CONNECT_FIELDS = frozenset(f.name for f in dataclasses.fields(Connect))

KNOWN_KEYS: frozenset[str] = frozenset(
    {_PREFIX + name for name in _POLICY_FIELDS | _CONNECT_FIELDS} | set(_EXTRA_CHECKS)
)

# Close enough to a known key to be a typo of it (walgaurd_rpo_minutes) rather than a variable
# of the user's own; well above what unrelated names such as ansible_port score.
_TYPO_CUTOFF = 0.85


_KNOWN_SORTED = sorted(KNOWN_KEYS)


# Every host of an inventory has mostly the same variable names (ansible_host, group variables):
# each name is compared with the known keys once per run, not once per host.
@functools.lru_cache(maxsize=4096)
def _misspelt_prefix(key: str) -> str | None:
    matches = difflib.get_close_matches(key.lower(), _KNOWN_SORTED, n=1, cutoff=_TYPO_CUTOFF)
    return matches[0] if matches else None


def policy_for(
    target_vars: Mapping[str, Any],
    host: str = "?",
    *,
    sources: Mapping[str, str] | None = None,
) -> Policy:
    """The expectations for one host (see `settings_for`)."""
    return settings_for(target_vars, host, sources=sources)[1]


def connect_for(target_vars: Mapping[str, Any], host: str = "?") -> Connect:
    """How to reach one host (see `settings_for`)."""
    return settings_for(target_vars, host)[0]


def settings_for(
    target_vars: Mapping[str, Any],
    host: str = "?",
    *,
    sources: Mapping[str, str] | None = None,
) -> tuple[Connect, Policy]:
    """How to reach one host and what to expect of it, from its merged inventory variables.

    `sources` optionally maps a variable name to where it was set ("group_vars/db.yml:3"), so
    errors can say which file to fix. Raises PolicyError on the first bad or unknown variable.
    """
    sources = sources or {}
    overrides: dict[str, Any] = {}
    for key, value in target_vars.items():
        if not isinstance(key, str):
            continue
        if not key.startswith(_PREFIX):
            # A misspelt prefix (Walguard_, walgaurd_) would otherwise pass as a user variable.
            guess = _misspelt_prefix(key)
            if guess is not None:
                raise PolicyError(
                    host, key, f"not a walguard setting; did you mean {guess}?", sources.get(key)
                )
            continue
        if key not in KNOWN_KEYS:
            # Compared without the prefix, which every key shares and would make anything look
            # close to something.
            suffixes = sorted(known.removeprefix(_PREFIX) for known in KNOWN_KEYS)
            close = difflib.get_close_matches(key.removeprefix(_PREFIX), suffixes, n=1)
            guess = _PREFIX + close[0] if close else None
            hint = (
                f"; did you mean {guess}?" if guess else f"; known: {', '.join(sorted(KNOWN_KEYS))}"
            )
            raise PolicyError(host, key, f"unknown walguard setting{hint}", sources.get(key))
        name = key.removeprefix(_PREFIX)
        check = _FIELD_CHECKS.get(name) or _EXTRA_CHECKS[key]
        try:
            checked = check(value)
        except Invalid as exc:
            raise PolicyError(host, key, str(exc), sources.get(key)) from None
        if name in _FIELD_CHECKS:
            overrides[name] = checked
    connect = Connect(**{k: v for k, v in overrides.items() if k in _CONNECT_FIELDS})
    policy = Policy(**{k: v for k, v in overrides.items() if k in _POLICY_FIELDS})
    _backup_source_complete(policy, host, sources)
    return connect, policy


def _backup_source_complete(policy: Policy, host: str, sources: Mapping[str, str]) -> None:
    """The keys a backup source needs are there, and none that it does not use: a stanza with
    another source would be read by nothing, silently."""
    source_key, stanza_key = f"{_PREFIX}base_backup_source", f"{_PREFIX}pgbackrest_stanza"
    source = policy.base_backup_source
    if source == "pgbackrest" and policy.pgbackrest_stanza is None:
        raise PolicyError(
            host, source_key, f"pgbackrest needs {stanza_key} (the stanza's name, e.g. main)",
            sources.get(source_key),
        )  # fmt: skip
    if source != "pgbackrest" and policy.pgbackrest_stanza is not None:
        raise PolicyError(
            host, stanza_key,
            f"only read with {source_key}: pgbackrest (the source is "
            f"{policy.backup_source or 'not set'})",
            sources.get(stanza_key),
        )  # fmt: skip
    if source == "pg_basebackup" and policy.base_backup_dir is None:
        raise PolicyError(
            host, source_key,
            f"pg_basebackup needs {_PREFIX}base_backup_dir (where its backups are)",
            sources.get(source_key),
        )  # fmt: skip
