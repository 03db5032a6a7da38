"""walguard's policy: the values an audit expects on each host, as data.

Every field of `Policy` has a default that suits a stock Debian PostgreSQL host. An inventory
overrides a field for a host or a group with the variable ``walguard_<field>``, under the usual
Ansible precedence (see `walguard.inventory`). Types are checked strictly: a quoted ``"15"`` is
not an integer and ``"yes"`` is not a boolean, because an audit that guesses what a policy
meant can pass a host it should have failed. An unknown ``walguard_*`` variable is an error,
with the closest known name suggested, because a misspelt override silently leaves the default
in force.

Variables (type, default: meaning)
----------------------------------
walguard_archive_dir (absolute path, "/pg_archive")
    The directory ``archive_command`` copies WAL segments into.
walguard_archive_owner (user name, "postgres")
    The user that must own the archive directory.
walguard_archive_group (group name, "postgres")
    The group that must own the archive directory.
walguard_archive_allowed_modes (list of octal modes, ["0700", "0750"])
    The permission modes the archive directory may have. Write them as quoted strings
    (``"0750"``); integers are accepted as numeric modes up to 0777 (YAML reads an unquoted
    ``0750`` as octal, but ``750`` as decimal, which is why larger integers are refused).
    Normalised to four-digit octal strings.
walguard_rpo_minutes (integer > 0, 15)
    Recovery point objective: the newest archived segment may be at most this old.
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
    ``pgbackrest --stanza=main check``), run on the host as the archive owner, whose exit status
    then decides WG-ACT-004, WG-ACT-005 and WG-ACT-007. It must start with one of those tools
    and hold no shell syntax. Without it those controls are ERROR ("cannot verify").
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

walguard_selinux_required (boolean, true)
    SELinux must be enforcing on the host. When false, the SELinux controls are NOT APPLICABLE
    there, and the report says so.
walguard_selinux_type (policy name, "targeted")
    The SELinux policy type expected loaded and configured (RHEL: targeted; Debian: default).
walguard_selinux_archive_type (SELinux type, "postgresql_db_t")
    The label the archive directory and the archived files must carry.
walguard_selinux_postgres_domain (SELinux domain, "postgresql_t")
    The domain PostgreSQL must run confined in.

Also accepted, for checks that read them from the host's variables rather than from `Policy`:

walguard_zones (mapping of zone name to a mapping)
    Network vantage points to probe the host from (the lab's probe namespaces).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

_PREFIX = "walguard_"


class PolicyError(Exception):
    """A policy variable with a bad value or an unknown name, in one line.

    The parts are kept as attributes so that `walguard.inventory` can point at the file and line
    where the variable was set.
    """

    def __init__(self, host: str, key: str, problem: str, source: str | None = None) -> None:
        self.host = host
        self.key = key
        self.problem = problem
        self.source = source
        where = f" (set in {source})" if source else ""
        super().__init__(f"host {host}: {key}{where}: {problem}")

    def __reduce__(self) -> tuple[type[PolicyError], tuple[str, str, str, str | None]]:
        # The default reduce would call __init__ with the message only; pytest-xdist pickles.
        return (type(self), (self.host, self.key, self.problem, self.source))


@dataclass(frozen=True)
class Policy:
    """What one host is expected to be: see the module docstring for each field."""

    archive_dir: str = "/pg_archive"
    archive_owner: str = "postgres"
    archive_group: str = "postgres"
    archive_allowed_modes: tuple[str, ...] = ("0700", "0750")
    rpo_minutes: int = 15
    ready_backlog_max: int = 10
    archive_min_free_percent: int = 10
    archive_command_approved: tuple[str, ...] = ()
    archive_check_command: str | None = None
    standby_archiving: bool = False
    require_dedicated_mount: bool = True
    postgres_service: str = "postgresql.service"
    segment_size_bytes: int = 16777216
    selinux_required: bool = True
    selinux_type: str = "targeted"
    selinux_archive_type: str = "postgresql_db_t"
    selinux_postgres_domain: str = "postgresql_t"


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


class _Invalid(Exception):
    """A validator's complaint: what was expected and what was found."""


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


def _bool(value: Any) -> bool:
    # type() rather than isinstance(): 1 and 0 are ints that would pass as bools.
    if type(value) is not bool:
        raise _Invalid(f"expected true or false, got {_describe(value)}")
    return value


def _int(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    if minimum is not None and maximum is not None:
        expected = f"an integer from {minimum} to {maximum}"
    elif minimum is not None:
        expected = f"an integer >= {minimum}"
    else:
        expected = "an integer"

    def check(value: Any) -> int:
        # bool is a subclass of int, and `true` where a number belongs is a mistake.
        if not isinstance(value, int) or isinstance(value, bool):
            raise _Invalid(f"expected {expected}, got {_describe(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise _Invalid(f"expected {expected}, got {value}")
        return value

    return check


def _word(value: Any) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise _Invalid(f"expected a non-empty name without spaces, got {_describe(value)}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"expected a non-empty string, got {_describe(value)}")
    return value


def _absolute_path(value: Any) -> str:
    if not isinstance(value, str) or not PurePosixPath(value).is_absolute() or "\0" in value:
        raise _Invalid(f"expected an absolute path such as /pg_archive, got {_describe(value)}")
    return value


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)

    return optional


_MODE_TEXT = re.compile(r"(?:0o)?([0-7]{3,4})")


def _modes(value: Any) -> tuple[str, ...]:
    example = 'a list of octal modes such as ["0700", "0750"]'
    if not isinstance(value, list | tuple):
        raise _Invalid(f"expected {example}, got {_describe(value)}")
    if not value:
        raise _Invalid(f"expected {example}, got an empty list (no mode would ever pass)")
    modes: list[str] = []
    for item in value:
        if isinstance(item, str) and (match := _MODE_TEXT.fullmatch(item.strip())):
            mode = int(match.group(1), 8)
        elif isinstance(item, int) and not isinstance(item, bool):
            # An unquoted 750 is decimal 750 (0o1356), almost surely meant as 0750; refusing
            # integers above 0777 catches that while keeping YAML's own octal 0750 usable.
            if not 0 <= item <= 0o777:
                raise _Invalid(
                    f"mode {item} is not a permission mode from 0 to 0777 (an unquoted 750 is "
                    f'decimal in YAML); write modes as quoted octal strings such as "0750"'
                )
            mode = item
        else:
            raise _Invalid(f"expected {example}, got {_describe(item)} in the list")
        text = f"{mode:04o}"
        if text not in modes:
            modes.append(text)
    return tuple(modes)


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and item.strip() for item in value
    ):
        raise _Invalid(f"expected a list of non-empty strings, got {_describe(value)}")
    return tuple(value)


# The repository checks of the archiving tools walguard knows; nothing else is run.
CHECK_TOOLS = frozenset(
    {"pgbackrest", "wal-g", "barman", "barman-cloud-check-wal-archive", "pg_probackup"}
)


def _check_command(value: Any) -> str:
    text = _text(value)
    bad = sorted({c for c in text if c in "$`;|&<>()\\\n'\""})
    if bad:
        raise _Invalid(f"expected a plain command line without shell syntax, found {' '.join(bad)}")
    words = text.split()
    tool = words[0].rsplit("/", 1)[-1]
    if tool not in CHECK_TOOLS and not re.fullmatch(r"pg_probackup-\d+", tool):
        raise _Invalid(
            f"expected the check of one of {', '.join(sorted(CHECK_TOOLS))}, got {tool!r}"
        )
    return " ".join(words)


def _segment_size(value: Any) -> int:
    size = _int(minimum=1)(value)
    # PostgreSQL only accepts powers of two from 1 MiB to 1 GiB for wal_segment_size.
    if size & (size - 1) or not 1 << 20 <= size <= 1 << 30:
        raise _Invalid(f"expected a power of two from 1048576 (1 MiB) to 1073741824, got {size}")
    return size


def _zones(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected a mapping of zone names to zone settings, got {_describe(value)}")
    for name, zone in value.items():
        if not isinstance(name, str) or not name:
            raise _Invalid(f"zone name {name!r} is not a non-empty string")
        if not isinstance(zone, Mapping):
            raise _Invalid(f"zone {name!r}: expected a mapping of settings, got {_describe(zone)}")
    return value


_FIELD_CHECKS: dict[str, Callable[[Any], Any]] = {
    "archive_dir": _absolute_path,
    "archive_owner": _word,
    "archive_group": _word,
    "archive_allowed_modes": _modes,
    "rpo_minutes": _int(minimum=1),
    "ready_backlog_max": _int(minimum=0),
    "archive_min_free_percent": _int(minimum=0, maximum=100),
    "archive_command_approved": _strings,
    "archive_check_command": _optional(_check_command),
    "standby_archiving": _bool,
    "require_dedicated_mount": _bool,
    "postgres_service": _word,
    "pg_socket_dir": _absolute_path,
    "pg_port": _int(minimum=1, maximum=65535),
    "pg_dsn": _optional(_text),
    "known_hosts_file": _optional(_text),
    "connect_timeout_s": _int(minimum=1),
    "command_timeout_s": _int(minimum=1),
    "ssh_retries": _int(minimum=0, maximum=10),
    "remediation_timeout_s": _int(minimum=1),
    "segment_size_bytes": _segment_size,
    "selinux_required": _bool,
    "selinux_type": _word,
    "selinux_archive_type": _word,
    "selinux_postgres_domain": _word,
}

# Read by checks straight from the host's variables; validated here so typos still fail early.
_EXTRA_CHECKS: dict[str, Callable[[Any], Any]] = {
    _PREFIX + "zones": _zones,
}

_POLICY_FIELDS = frozenset(f.name for f in dataclasses.fields(Policy))
_CONNECT_FIELDS = frozenset(f.name for f in dataclasses.fields(Connect))

KNOWN_KEYS: frozenset[str] = frozenset(
    {_PREFIX + name for name in _POLICY_FIELDS | _CONNECT_FIELDS} | set(_EXTRA_CHECKS)
)

# Close enough to a known key to be a typo of it (walgaurd_rpo_minutes) rather than a variable
# of the user's own; well above what unrelated names such as ansible_port score.
_TYPO_CUTOFF = 0.85


def _misspelt_prefix(key: str) -> str | None:
    matches = difflib.get_close_matches(key.lower(), sorted(KNOWN_KEYS), n=1, cutoff=_TYPO_CUTOFF)
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
        except _Invalid as exc:
            raise PolicyError(host, key, str(exc), sources.get(key)) from None
        if name in _FIELD_CHECKS:
            overrides[name] = checked
    connect = Connect(**{k: v for k, v in overrides.items() if k in _CONNECT_FIELDS})
    policy = Policy(**{k: v for k, v in overrides.items() if k in _POLICY_FIELDS})
    return connect, policy
