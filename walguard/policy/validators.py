"""The validators of policy values: each takes what the inventory says and returns the checked
value or raises `Invalid` saying what was expected and what was found. Strict on purpose: an audit
that guesses what a policy meant can pass a host it should have failed."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from walguard.policy.change_window import EXAMPLE, ChangeWindowError, parse_windows


class Invalid(Exception):
    """A validator's complaint: what was expected and what was found."""


def describe_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


# Ansible's own boolean spellings (ansible.module_utils.parsing.convert_bool.boolean, which its
# modules apply to their options): an INI inventory's `key=false` is the string "false". Kept
# here rather than imported: ansible-core is optional (a unit test pins the two together).
_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_FALSE = frozenset({"n", "no", "off", "0", "false", "f"})


def boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    # 1 and 0 (and 1.0, 0.0) as Ansible takes them; no other number is a boolean.
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(f"expected true or false (or yes/no, on/off, 1/0), got {describe_value(value)}")


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[Any], int]:
    if minimum is not None and maximum is not None:
        expected = f"an integer from {minimum} to {maximum}"
    elif minimum is not None:
        expected = f"an integer >= {minimum}"
    else:
        expected = "an integer"

    def check(value: Any) -> int:
        # bool is a subclass of int, and `true` where a number belongs is a mistake.
        if not isinstance(value, int) or isinstance(value, bool):
            raise Invalid(f"expected {expected}, got {describe_value(value)}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise Invalid(f"expected {expected}, got {value}")
        return value

    return check


def word_value(value: Any) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise Invalid(f"expected a non-empty name without spaces, got {describe_value(value)}")
    return value


def text_value(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected a non-empty string, got {describe_value(value)}")
    return value


def absolute_path_value(value: Any) -> str:
    if not isinstance(value, str) or not PurePosixPath(value).is_absolute() or "\0" in value:
        raise Invalid(f"expected an absolute path such as /pg_archive, got {describe_value(value)}")
    return value


_PLAIN_PATH = re.compile(r"/[A-Za-z0-9/._+-]*")


def plain_path_value(value: Any) -> str:
    """An absolute path of letters, digits and / . _ + - only: the restore drill puts it into a
    restore_command, which PostgreSQL runs through a shell."""
    path = absolute_path_value(value)
    if _PLAIN_PATH.fullmatch(path) is None:
        raise Invalid(
            f"expected a plain path (letters, digits and / . _ + -, since it goes into the "
            f"drill's restore_command), got {describe_value(value)}"
        )
    return path


# Directories --remediate would chown, chmod and relabel if the archive directory were one of
# them: the system's own (never an archive), and the parents an archive is made in.
_SYSTEM_DIRS = frozenset(
    {
        "/", "/home", "/media", "/mnt", "/opt", "/srv", "/var", "/var/lib", "/var/local",
        "/var/opt", "/var/log", "/var/cache", "/var/spool", "/var/mail", "/var/backups",
        "/var/lib/postgresql", "/var/lib/pgsql", "/usr/local",
    }
)  # fmt: skip
# ... and the trees no archive directory belongs in, at any depth.
_SYSTEM_TREES = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/root",
    "/run", "/sbin", "/sys", "/tmp", "/usr", "/var/run", "/var/lock", "/var/tmp",
)  # fmt: skip


def archive_dir_value(value: Any) -> str:
    """An absolute, normalised path that is not a system directory: --remediate makes the
    archive directory the policy's owner and mode, so `/`, `/etc` or `/x/..` must never get
    that far."""
    path = absolute_path_value(value)
    if path != "/" and any(part in ("", ".", "..") for part in path.split("/")[1:]):
        raise Invalid(
            f"expected a normalised absolute path (no '.', '..', '//' or trailing '/'), "
            f"got {path!r}"
        )
    if any(not c.isprintable() for c in path):
        raise Invalid(f"expected a path without control characters, got {path!r}")
    home = path.count("/") == 2 and path.startswith("/home/")
    tree = next((t for t in _SYSTEM_TREES if path == t or path.startswith(f"{t}/")), None)
    if path in _SYSTEM_DIRS or home or tree is not None:
        what = f"in the system tree {tree}" if tree and tree != path else "a system directory"
        if home:
            what = "a user's home directory"
        raise Invalid(
            f"{path} is {what}, which --remediate would chown and chmod; expected the archive's "
            "own directory, such as /pg_archive, /srv/pg_archive or /var/lib/pgsql/archive"
        )
    return path


def positive_number(value: Any) -> float:
    # bool is a subclass of int, and `true` where a number belongs is a mistake.
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise Invalid(f"expected a number > 0, got {describe_value(value)}")
    if value != value or value == float("inf"):
        raise Invalid(f"expected a finite number > 0, got {value}")
    return float(value)


def non_negative_number(value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value >= 0:
        raise Invalid(f"expected a number >= 0, got {describe_value(value)}")
    if value == float("inf"):
        raise Invalid(f"expected a finite number >= 0, got {value}")
    return float(value)


def matching(pattern: str, expected: str) -> Callable[[Any], str]:
    """A string of one shape (a size, a percentage): it reaches a command line as one word."""
    compiled = re.compile(pattern)

    def check(value: Any) -> str:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise Invalid(f"expected {expected}, got {describe_value(value)}")
        return value

    return check


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in choices:
            raise Invalid(f"expected one of {', '.join(choices)}, got {describe_value(value)}")
        return str(value)

    return check


def optional_value(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)

    return optional


_MODE_TEXT = re.compile(r"(?:0o)?([0-7]{3,4})")


def modes_value(value: Any) -> tuple[str, ...]:
    example = 'a list of octal modes such as ["0700", "0750"]'
    if not isinstance(value, list | tuple):
        raise Invalid(f"expected {example}, got {describe_value(value)}")
    if not value:
        raise Invalid(f"expected {example}, got an empty list (no mode would ever pass)")
    modes: list[str] = []
    for item in value:
        if isinstance(item, str) and (match := _MODE_TEXT.fullmatch(item.strip())):
            mode = int(match.group(1), 8)
        elif isinstance(item, int) and not isinstance(item, bool):
            # An unquoted 750 is decimal 750 (0o1356), almost surely meant as 0750; refusing
            # integers above 0777 catches that while keeping YAML's own octal 0750 usable.
            if not 0 <= item <= 0o777:
                raise Invalid(
                    f"mode {item} is not a permission mode from 0 to 0777 (an unquoted 750 is "
                    f'decimal in YAML); write modes as quoted octal strings such as "0750"'
                )
            mode = item
        else:
            raise Invalid(f"expected {example}, got {describe_value(item)} in the list")
        text = f"{mode:04o}"
        if text not in modes:
            modes.append(text)
    return tuple(modes)


def strings_value(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and item.strip() for item in value
    ):
        raise Invalid(f"expected a list of non-empty strings, got {describe_value(value)}")
    return tuple(value)


# The repository checks of the archiving tools walguard knows; nothing else is run.
CHECK_TOOLS = frozenset(
    {"pgbackrest", "wal-g", "barman", "barman-cloud-check-wal-archive", "pg_probackup"}
)


def check_command_value(value: Any) -> str:
    text = text_value(value)
    bad = sorted({c for c in text if c in "$`;|&<>()\\\n'\""})
    if bad:
        raise Invalid(f"expected a plain command line without shell syntax, found {' '.join(bad)}")
    words = text.split()
    tool = words[0].rsplit("/", 1)[-1]
    if tool not in CHECK_TOOLS and not re.fullmatch(r"pg_probackup-\d+", tool):
        raise Invalid(
            f"expected the check of one of {', '.join(sorted(CHECK_TOOLS))}, got {tool!r}"
        )
    return " ".join(words)


def segment_size_value(value: Any) -> int:
    size = integer(minimum=1)(value)
    # PostgreSQL only accepts powers of two from 1 MiB to 1 GiB for wal_segment_size.
    if size & (size - 1) or not 1 << 20 <= size <= 1 << 30:
        raise Invalid(f"expected a power of two from 1048576 (1 MiB) to 1073741824, got {size}")
    return size


def zones_value(value: Any) -> tuple[tuple[str, bool], ...]:
    """{zone-a: {expect_postgres: true}, ...} -> (("zone-a", True), ...)"""
    example = (
        "a mapping such as {zone-a: {expect_postgres: true}, zone-b: {expect_postgres: false}}"
    )
    if not isinstance(value, Mapping):
        raise Invalid(f"expected {example}, got {describe_value(value)}")
    zones: list[tuple[str, bool]] = []
    for name, zone in value.items():
        if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
            raise Invalid(f"zone name {name!r} is not a non-empty name without spaces")
        if not isinstance(zone, Mapping) or set(zone) != {"expect_postgres"}:
            raise Invalid(f"zone {name!r}: expected {{expect_postgres: true|false}}, got {zone!r}")
        zones.append((name, boolean(zone["expect_postgres"])))
    return tuple(zones)


def patterns_value(value: Any) -> tuple[str, ...]:
    """A list of regular expressions, each compiled here so a bad one fails before the audit."""
    patterns = strings_value(value)
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Invalid(f"{pattern!r} is not a regular expression: {exc}") from None
    return patterns


_LISTENER = re.compile(r"[^\s:]+:(?:\*|\d{1,5})")


def listeners_value(value: Any) -> tuple[str, ...]:
    """PROCESS:PORT entries (PORT may be *), e.g. ["sshd:22", "chronyd:323"]."""
    entries = strings_value(value)
    for entry in entries:
        if not _LISTENER.fullmatch(entry):
            raise Invalid(f"expected PROCESS:PORT entries such as sshd:22, got {entry!r}")
    return entries


def change_windows_value(value: Any) -> tuple[str, ...]:
    """A change window or a list of them (walguard.policy.change_window), each read here so a
    bad one fails before the audit; kept as written. Null or an empty list: no window."""
    texts = [value] if isinstance(value, str) else [] if value is None else value
    if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
        raise Invalid(
            f"expected a change window such as '{EXAMPLE}' or a list of them, "
            f"got {describe_value(value)}"
        )
    try:
        return parse_windows(texts).texts
    except ChangeWindowError as exc:
        raise Invalid(str(exc)) from None


# A person or a team's address in a record and a report: one line, short enough to read there.
_CONTACT_MAX = 120


def contact_value(value: Any) -> str:
    """A name or an e-mail address (``Jane Doe <jane.doe@bank.example>``): one short line."""
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > _CONTACT_MAX
        or not value.isprintable()
    ):
        raise Invalid(
            f"expected a name or e-mail address on one line of at most {_CONTACT_MAX} "
            f"characters, got {describe_value(value)}"
        )
    return value.strip()
