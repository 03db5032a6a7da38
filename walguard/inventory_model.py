"""What every inventory reader produces (`Target`), and the checks they share: host names and
ranges, the ansible_* connection variables, secrets that must never be shown.

`walguard.inventory` documents the formats and how a source is read; this module is internal.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from walguard.policy import Connect, Policy


class InventoryError(Exception):
    """A bad inventory, in one line: the file, the line or key, and what was expected."""


@dataclass(frozen=True)
class Target:
    """One host to audit, with its merged inventory variables."""

    name: str
    address: str
    port: int
    user: str | None
    key_file: str | None
    become: bool
    groups: tuple[str, ...]
    # Excluded from the hash (a mapping is unhashable) but still compared. Left out of the repr:
    # any variable may come from a Vault-encrypted file that ansible-inventory decrypted.
    vars: Mapping[str, Any] = field(hash=False, repr=False)
    # Built once from the vars when the inventory is read: what to expect, how to connect.
    policy: Policy = field(default_factory=Policy, hash=False)
    connect: Connect = field(default_factory=Connect, hash=False)
    # ansible_ssh_common_args as an argument list (never through a shell).
    ssh_args: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class Secret:
    """A value walguard keeps but never shows: one of Ansible's password variables, or a Vault
    value that ansible-inventory left encrypted. walguard needs neither (it escalates with
    `sudo -n`); the placeholder repr keeps them out of reports, messages and tracebacks."""

    value: Any
    encrypted: bool = False

    def __repr__(self) -> str:
        return "<vault-encrypted>" if self.encrypted else "<secret>"

    __str__ = __repr__


# ansible_password, ansible_ssh_pass, ansible_become_password, ansible_sudo_pass, ...
_SECRET_NAME = re.compile(r"ansible_(?:\w+_)?(?:pass|password|passphrase)")


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Origin:
    """Where a value was set: a file and line, or a whole source (line None)."""

    file: Path | str
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)


# variable name -> (value, where it was set)
Layer = dict[str, tuple[Any, Origin]]


def fail(origin: Origin, where: str, problem: str) -> NoReturn:
    raise InventoryError(f"{origin}: {where}: {problem}")


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Secret):
        if value.encrypted:
            return (
                "an inline Vault value, which ansible-inventory leaves encrypted (keep this "
                "variable in a Vault-encrypted vars file instead)"
            )
        return "a secret (not shown)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    return f"a {type(value).__name__} ({value!r})"


def bad_name(name: str) -> str | None:
    """Why `name` cannot be a host or group name, or None; names become file names."""
    if not name:
        return "an empty name"
    if any(c.isspace() for c in name):
        return "whitespace"
    if "/" in name or "\\" in name:
        return "a path separator"
    if name.startswith("."):
        return "a leading dot"
    return None


def is_ipv6(name: str) -> bool:
    try:
        ipaddress.IPv6Address(name)
    except ValueError:
        return False
    return True


def plain(value: Any, active: set[int]) -> Any:
    """A private copy, made of plain dicts and lists, so no host can change another's vars."""
    if isinstance(value, dict | list):
        if id(value) in active:
            raise RecursionError
        active = active | {id(value)}
        if isinstance(value, dict):
            return {key: plain(item, active) for key, item in value.items()}
        return [plain(item, active) for item in value]
    return value


# --- host ranges ------------------------------------------------------------------------------

_RANGE = re.compile(r"\[([^\[\]]*)\]")
DIGITS = re.compile(r"[0-9]+")
# A typo such as db[1:1000000] would otherwise build a million hosts before anything is said.
MAX_HOSTS_PER_PATTERN = 10_000


def expand_range(pattern: str) -> list[str]:
    """Ansible's host range expansion; raises ValueError with what was expected."""
    match = _RANGE.search(pattern)
    if match is None:
        if "[" in pattern or "]" in pattern:
            raise ValueError("unbalanced [ ] in host name; expected a range such as db[01:20]")
        return [pattern]
    head, spec, tail = pattern[: match.start()], match.group(1), pattern[match.end() :]
    if "[" in head or "]" in head:
        raise ValueError("unbalanced [ ] in host name; expected a range such as db[01:20]")
    bounds = spec.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError(f"range [{spec}]: expected [start:end] or [start:end:step]")
    start, end = bounds[0] or "0", bounds[1]  # Ansible reads [:5] as [0:5]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not DIGITS.fullmatch(step_text) or int(step_text) < 1:
        raise ValueError(f"range [{spec}]: expected a step that is a positive integer")
    step = int(step_text)
    items: list[str]
    if DIGITS.fullmatch(start) and DIGITS.fullmatch(end):
        width = 0
        if len(start) > 1 and start.startswith("0"):
            if len(start) != len(end):
                raise ValueError(
                    f"range [{spec}]: a zero-padded start expects an end of the same width"
                )
            width = len(start)
        low, high = int(start), int(end)
        if low > high:
            raise ValueError(f"range [{spec}]: expected start <= end")
        if (high - low) // step + 1 > MAX_HOSTS_PER_PATTERN:
            raise ValueError(
                f"range [{spec}]: more than {MAX_HOSTS_PER_PATTERN} hosts; expected a smaller range"
            )
        items = [str(i).zfill(width) for i in range(low, high + 1, step)]
    elif (
        len(start) == len(end) == 1
        and start in string.ascii_letters
        and end in string.ascii_letters
    ):
        low, high = string.ascii_letters.index(start), string.ascii_letters.index(end)
        if low > high:
            raise ValueError(f"range [{spec}]: expected start <= end")
        items = list(string.ascii_letters[low : high + 1 : step])
    else:
        raise ValueError(
            f"range [{spec}]: expected two numbers ([01:20]) or two single letters ([a:f])"
        )
    names: list[str] = []
    for item in items:
        names.extend(expand_range(head + item + tail))
        if len(names) > MAX_HOSTS_PER_PATTERN:
            raise ValueError(f"more than {MAX_HOSTS_PER_PATTERN} hosts; expected smaller ranges")
    return names


def host_names(pattern: str, where: str, origin: Origin) -> list[str]:
    """The host names a pattern stands for, each checked; InventoryError otherwise."""
    try:
        names = expand_range(pattern)
    except ValueError as exc:
        fail(origin, where, str(exc))
    for name in names:
        if (why := bad_name(name)) is not None:
            fail(origin, where, f"host name {name!r} has {why}; expected a host name")
        if ":" in name and not is_ipv6(name):
            fail(
                origin,
                where,
                f"host name {name!r}: host:port is not supported; expected the port in "
                "ansible_port",
            )
    return names


# --- connection variables ---------------------------------------------------------------------

# Characters that only mean something to a shell: in ssh options they are a mistake or an attack.
_SHELL_META = frozenset("$`;|&<>()\n")
_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_FALSE = frozenset({"n", "no", "off", "0", "false", "f"})


class Connection:
    """The ansible_* connection variables of one host, checked."""

    def __init__(self, host: str, merged: Layer) -> None:
        self.host = host
        self.merged = merged

    def pick(self, name: str, alias: str | None = None) -> tuple[str, Any, Origin] | None:
        found = [(n, *self.merged[n]) for n in (name, alias) if n and n in self.merged]
        if len(found) == 2 and found[0][1] != found[1][1]:
            # Ansible lets the alias win, which few people know; refuse rather than guess.
            fail(
                found[1][2],
                f"host {self.host}: {alias}",
                f"conflicts with {name} (set in {found[0][2]}); expected only one of them",
            )
        if not found or found[0][1] is None:
            return None
        return found[0]

    def fail(self, picked: tuple[str, Any, Origin], expected: str) -> NoReturn:
        key, value, origin = picked
        fail(origin, f"host {self.host}: {key}", f"expected {expected}, got {kind(value)}")

    def text(self, name: str, alias: str) -> str | None:
        picked = self.pick(name, alias)
        if picked is None:
            return None
        if not isinstance(picked[1], str) or not picked[1].strip():
            self.fail(picked, "a non-empty string")
        return picked[1]

    def port(self) -> int:
        picked = self.pick("ansible_port", "ansible_ssh_port")
        if picked is None:
            return 22
        value = picked[1]
        # Ansible converts with int(), so a quoted "2222" works there and must here.
        if isinstance(value, str) and DIGITS.fullmatch(value.strip()):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
            self.fail(picked, "a port number from 1 to 65535")
        return value

    def ssh_args(self) -> tuple[str, ...]:
        """ansible_ssh_common_args, split as a shell would but never run by one: a value that
        needs a shell to mean what it says ($(...), `...`, ;, |, &, <, >) is refused."""
        picked = self.pick("ansible_ssh_common_args")
        if picked is None:
            return ()
        key, value, origin = picked
        if not isinstance(value, str):
            self.fail(picked, "a string of ssh options")
        bad = sorted({c for c in value if c in _SHELL_META})
        if bad:
            fail(
                origin,
                f"host {self.host}: {key}",
                f"shell metacharacters {' '.join(bad)} are not allowed (walguard passes ssh "
                "options as arguments, never through a shell)",
            )
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            fail(origin, f"host {self.host}: {key}", f"cannot split {value!r}: {exc}")

    def become(self) -> bool:
        picked = self.pick("ansible_become")
        if picked is None:
            return False
        value = picked[1]
        # The spellings Ansible's boolean() accepts, so the inventory means the same to both.
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        self.fail(picked, "true or false")
