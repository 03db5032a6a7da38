"""What every inventory reader produces (`Target`), and the checks they share: host names and
ranges, the ansible_* connection variables, secrets that must never be shown.

`walguard.inventory.load` documents the formats and how a source is read; this module is internal.
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

from walguard.errors import one_line
from walguard.inventory.ssh_options import SshOptionError, check_ssh_args
from walguard.policy.model import Connect, Policy


class InventoryError(Exception):
    """A bad inventory, in one line: the file, the line or key, and what was expected."""

    def __init__(self, message: str) -> None:
        # Whatever of the inventory a message quotes stays on its one line.
        super().__init__(one_line(message))


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
    # ansible_ssh_common_args and ansible_ssh_extra_args as an argument list (never through a
    # shell), each option allowed by `walguard.inventory.ssh_options`.
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


_IDENTIFIER = re.compile(r"ansible_\w+")
HIDDEN = "<hidden>"


def masked(text: str) -> str:
    """`text` with whatever follows a password variable's name hidden: inventory text quoted in
    an error (an INI line, a mistaken host name, a string where a mapping belongs) may hold
    `ansible_become_password=...`. A name with nothing after it is left as it is."""
    for match in _IDENTIFIER.finditer(text):
        if is_secret_name(match.group()) and match.end() < len(text):
            return f"{text[: match.end()]}={HIDDEN}"
    return text


def shown(text: str) -> str:
    """`text` quoted for a message, secrets `masked`."""
    return repr(masked(text))


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
    # `where` may hold a name as written (a YAML host key "db1 ansible_password=...", a
    # terminal's escape sequence): secrets masked, control characters escaped.
    shown_where = "".join(c if c.isprintable() else repr(c)[1:-1] for c in masked(where))
    raise InventoryError(f"{origin}: {shown_where}: {problem}")


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
        return f"a string ({shown(value)})"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    return f"a {type(value).__name__} ({value!r})"


def bad_name(name: str) -> str | None:
    """Why `name` cannot be a host or group name, or None. Names become file and directory
    names (evidence/<host>/, group_vars/<group>) and ssh destinations: one path component that
    is no option, nothing hidden, nothing a terminal would act on."""
    if not name:
        return "an empty name"
    if len(name.encode("utf-8", errors="surrogateescape")) > _NAME_MAX:
        return f"more than {_NAME_MAX} bytes"
    if any(c.isspace() for c in name):
        return "whitespace"
    if not name.isprintable():
        return "a control character"
    if "/" in name or "\\" in name:
        return "a path separator"
    if name.startswith("."):
        return "a leading dot"
    if name.startswith("-"):
        return "a leading '-'"
    return None


# The longest file name Linux file systems take (NAME_MAX).
_NAME_MAX = 255


def check_host_name(name: str, where: str, origin: Origin) -> None:
    """InventoryError unless `name` can be a host's name; every reader's hosts pass here."""
    if (why := bad_name(name)) is not None:
        fail(origin, where, f"host name {shown(name)} has {why}; expected a host name")
    if ":" in name and not is_ipv6(name):
        fail(
            origin,
            where,
            f"host name {shown(name)}: host:port is not supported; expected the port in "
            "ansible_port",
        )


def is_ipv6(name: str) -> bool:
    try:
        ipaddress.IPv6Address(name)
    except ValueError:
        return False
    return True


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
        check_host_name(name, where, origin)
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

    def address(self, name: str) -> str:
        """ansible_host (else the host's name), checked as a name: it becomes ssh's destination."""
        address = self.text("ansible_host", "ansible_ssh_host")
        if address is None:
            return name
        if (why := bad_name(address)) is not None:
            picked = self.pick("ansible_host", "ansible_ssh_host")
            assert picked is not None  # text() found it
            fail(picked[2], f"host {self.host}: {picked[0]}", f"{shown(address)} has {why}")
        return address

    def user(self) -> str | None:
        """ansible_user: the part before '@' of ssh's destination, never an option."""
        user = self.text("ansible_user", "ansible_ssh_user")
        if user is not None and (user.startswith("-") or not user.isprintable() or " " in user):
            picked = self.pick("ansible_user", "ansible_ssh_user")
            assert picked is not None  # text() found it
            self.fail(picked, "a user name (no leading '-', whitespace or control characters)")
        return user

    def ssh_args(self) -> tuple[str, ...]:
        """ansible_ssh_common_args, then ansible_ssh_extra_args (as Ansible passes them to ssh),
        split as a shell would but never run by one, each option checked against the
        allow-list of `walguard.inventory.ssh_options`. A value that needs a shell to mean what it
        says ($(...), `...`, ;, |, &, <, >) is refused with its own message."""
        args: list[str] = []
        for name in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
            picked = self.pick(name)
            if picked is None:
                continue
            key, value, origin = picked
            where = f"host {self.host}: {key}"
            if not isinstance(value, str):
                self.fail(picked, "a string of ssh options")
            bad = sorted({c for c in value if c in _SHELL_META})
            if bad:
                fail(
                    origin,
                    where,
                    f"shell metacharacters {' '.join(bad)} are not allowed (walguard passes ssh "
                    "options as arguments, never through a shell)",
                )
            try:
                args += check_ssh_args(shlex.split(value))
            except SshOptionError as exc:
                fail(origin, where, str(exc))
            except ValueError as exc:
                fail(origin, where, f"cannot split {value!r}: {exc}")
        return tuple(args)

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
