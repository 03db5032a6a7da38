"""Ansible's INI inventory format, read as ansible-core's ``ini`` inventory plugin reads it
(checked against ansible-core 2.19's ``plugins/inventory/ini.py``), into the same builder as
YAML inventories (`walguard.inventory.build`), so that precedence, group_vars/ and host_vars/
beside the file, connection variables and walguard_* policies mean the same in both.

What the format means
---------------------
- Lines are stripped; blank lines and lines starting with ``#`` or ``;`` are comments. Only
  ``#`` starts a comment at the end of a line, and not in ``:vars`` sections (see values).
- ``[group]`` lists hosts, ``[group:vars]`` sets the group's variables, ``[group:children]``
  names its child groups. Lines before the first section are hosts of ``ungrouped``. ``all`` and
  ``ungrouped`` always exist; any other group that ``[group:vars]`` or a ``:children`` line
  names needs a ``[group]`` or ``[group:children]`` section somewhere in the file (an empty one
  will do): Ansible refuses it otherwise, and so does walguard.
- A host line is split as a shell would split it (quotes, ``#`` comments): a host pattern, then
  ``key=value`` pairs. The pattern may carry a port (``db1:2222``, ``[2001:db8::1]:2222``), which
  becomes ``ansible_port``, and ranges (``db[01:20]``, ``web[a:f]``, ``db[1:10:2]``).
- Values, on host lines and in ``:vars`` sections alike, go through Python's
  ``ast.literal_eval``: ``22`` is an integer, ``True`` a boolean, ``[1, 2]`` a list,
  ``{'a': 1}`` a mapping, ``None`` null; anything that is not a Python literal stays a string
  (``yes``, ``/pg_archive``, ``-o ProxyJump=bastion``). Tuples and sets become lists, as in
  Ansible. On host lines the shell-like split removes one level of quotes first, so a string
  that looks like a number needs two (``port_name="'22'"``); a ``:vars`` line takes everything
  after its first ``=`` as the value, a trailing ``# comment`` included unless the value is a
  Python literal. (Ansible's documentation calls ``:vars`` values strings; its code, and
  ansible-inventory's answer, make ``v=23`` the integer 23.)
- A host in several groups gets the variables of each of its lines, the later line winning.

Errors are one line, ``FILE:LINE: [section]: problem``, raised before any host is contacted;
where Ansible would quietly read a mistake as something else (``ansible_user=x`` before any
section is a host named ``ansible_user=x`` to Ansible), walguard refuses it.
"""

from __future__ import annotations

import ast
import itertools
import re
import shlex
import warnings
from pathlib import Path
from typing import Any

from walguard.inventory.build import Builder, Group
from walguard.inventory.model import (
    HIDDEN,
    InventoryError,
    Layer,
    Origin,
    Target,
    fail,
    host_names,
    masked,
    shown,
)

_SECTION = re.compile(r"^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$")
_SEMICOLON = re.compile(r"^\[[^\]]*\]\s*;")
_GROUP_NAME = re.compile(r"^([^:\]\s]+)\s*(?:#.*)?$")
_STATES = ("hosts", "children", "vars")

# Ansible's parse_address(): a port after a bracketed host, or after a host or IPv4 address
# (ranges included); the host part must then be a host name or an address.
_BRACKETED_HOSTPORT = re.compile(r"^\[(.+)\]:([0-9]+)$")
_HOSTPORT = re.compile(r"^((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)$")
_RANGE = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_LABEL = rf"(?:\w|{_RANGE})(?:[\w-]|{_RANGE})*(?<![_-])"
_HOST = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$", re.IGNORECASE)
_ADDRESS = re.compile(r"^[0-9a-f:.\[\]]+$", re.IGNORECASE)


def read_ini(path: Path) -> list[Target]:
    """The hosts of the INI inventory at `path`; InventoryError for any problem."""
    return _IniReader(path).read()


def ini_value(text: str, origin: Origin, where: str) -> Any:
    """A value as Ansible's ini plugin reads it (its _parse_value)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # not a Python literal: the string as written
    except (TypeError, MemoryError, RecursionError) as exc:
        # Ansible fails the whole file here too (it catches only ValueError and SyntaxError).
        fail(origin, where, f"cannot read this value ({type(exc).__name__}); quote it as a string")
    return _coerce(value)


def _coerce(value: Any) -> Any:
    """ansible-core's _parse_recursive_coerce_types_and_tag, without the tags."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | set):
        return [_coerce(item) for item in value]
    if isinstance(value, dict):
        return {key: _coerce(item) for key, item in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="surrogateescape")
    return value


def split_port(pattern: str) -> tuple[str, int | None]:
    """(host pattern, port or None), as Ansible's parse_address(allow_ranges=True) splits it;
    a pattern it cannot read as host[:port] is kept whole, without a port, as Ansible keeps it."""
    host, port = pattern, None
    for regex in (_BRACKETED_HOSTPORT, _HOSTPORT):
        match = regex.match(host)
        if match:
            host, port = match.group(1), int(match.group(2))
    if _HOST.match(host) or (("." in host or ":" in host) and _ADDRESS.match(host)):
        return host, port
    return pattern, None


class _IniReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.inv = Builder(path, vars_dir=path.parent)
        self.declared = {"all", "ungrouped"}
        # (line, group name, problem): names that must be declared by the end of the file.
        self.wanted: list[tuple[int, str, str]] = []

    def read(self) -> list[Target]:
        group = self.inv.group("ungrouped", self.inv.origin(None), "ungrouped")
        state, where = "hosts", "before any [section]"
        for number, raw in enumerate(self.lines(), 1):
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            origin = self.inv.origin(number)
            section = _SECTION.match(line)
            if section:
                name, tag = section.groups()
                where = f"[{name}:{tag}]" if tag else f"[{name}]"
                state = tag or "hosts"
                if state not in _STATES:
                    fail(
                        origin,
                        where,
                        f"unknown section type {tag!r}; expected [{name}], [{name}:vars] or "
                        f"[{name}:children]",
                    )
                group = self.inv.group(name, origin, where)
                if state == "vars":
                    problem = (
                        f"[{name}:vars] sets variables of a group that is never declared; "
                        f"expected a [{name}] or [{name}:children] section too"
                    )
                    self.wanted.append((number, name, problem))
                else:
                    self.declared.add(name)
            elif line.startswith("[") and (line.endswith("]") or _SEMICOLON.match(line)):
                # Anything else starting with [ is a host line: [2001:db8::1]:2222.
                hint = "; only # starts a comment after it" if _SEMICOLON.match(line) else ""
                fail(
                    origin,
                    "section header",
                    f"cannot read {shown(line)}; expected [group], [group:vars] or "
                    f"[group:children] with no spaces{hint}",
                )
            elif state == "hosts":
                self.host_line(line, group, origin, where)
            elif state == "vars":
                self.vars_line(line, group, origin, where)
            else:
                self.child_line(line, group, origin, where)
        for number, name, problem in sorted(self.wanted):
            if name not in self.declared:
                raise InventoryError(f"{self.inv.origin(number)}: {problem}")
        return self.inv.targets()

    def lines(self) -> list[str]:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise InventoryError(
                f"{self.path}: cannot read inventory file: {exc.strerror or exc}"
            ) from None
        # Odd bytes are tolerated in comments, as Ansible tolerates them; anywhere else they
        # would end up in a host name or a value.
        lines = data.decode("utf-8", errors="surrogateescape").splitlines()
        for number, line in enumerate(lines, 1):
            stripped = line.strip()
            if stripped[:1] in ("#", ";"):
                continue
            odd = next((c for c in stripped if "\udc80" <= c <= "\udcff"), None)
            if odd is not None:
                raise InventoryError(
                    f"{self.path}:{number}: inventory file is not UTF-8 text (byte "
                    f"0x{ord(odd) - 0xDC00:02x}); expected UTF-8"
                )
        return lines

    def host_line(self, line: str, group: Group, origin: Origin, where: str) -> None:
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError as exc:
            fail(origin, where, f"cannot split the host line: {exc}")
        if not tokens:
            return
        first = tokens[0]
        if "=" in first:
            fail(
                origin,
                where,
                f"{shown(first)} is a variable where a host name was expected; set group variables "
                "in a [group:vars] section, host variables after the host name on its line",
            )
        if first == "---":
            fail(
                origin,
                where,
                "'---' starts a YAML document, not an INI host line; give a YAML inventory the "
                "extension .yml",
            )
        pattern, port = split_port(first)
        if first.endswith(":") and port is None:
            fail(
                origin,
                where,
                f"host {shown(first)} ends in ':'; expected host or host:port (a YAML inventory "
                "needs the extension .yml)",
            )
        found: Layer = {}
        if port is not None:
            found["ansible_port"] = (port, origin)
        for before, token in itertools.pairwise(tokens):
            key, sep, text = token.partition("=")
            if not sep:
                # `ansible_password= S3CRET` splits into two words: the second is the secret.
                got = shown(token) if masked(before) == before else HIDDEN
                fail(
                    origin,
                    where,
                    f"expected key=value host variables after the host name, got {got}",
                )
            if not key:
                fail(origin, where, f"expected a variable name before '=', got {shown(token)}")
            found[key] = (ini_value(text, origin, f"{where}: {key}"), origin)
        for name in host_names(pattern, where, origin):
            self.inv.add_host(name, group, found, origin, where)

    def vars_line(self, line: str, group: Group, origin: Origin, where: str) -> None:
        key, sep, text = (part.strip() for part in line.partition("="))
        if not sep:
            fail(origin, where, f"expected key=value, got {shown(line)}")
        if not key:
            fail(origin, where, f"expected a variable name before '=', got {shown(line)}")
        self.inv.set_group_vars(group, {key: (ini_value(text, origin, f"{where}: {key}"), origin)})

    def child_line(self, line: str, group: Group, origin: Origin, where: str) -> None:
        match = _GROUP_NAME.match(line)
        if match is None:
            fail(
                origin,
                where,
                f"expected a group name, got {shown(line)} (hosts go in a [group] section)",
            )
        child = self.inv.group(match.group(1), origin, where)
        self.inv.add_child(group, child, origin, where)
        if child.name not in self.declared:
            problem = (
                f"{where} names group {child.name!r}, which is never declared; expected a "
                f"[{child.name}] or [{child.name}:children] section (hosts go in a [group] "
                "section)"
            )
            self.wanted.append((origin.line or 0, child.name, problem))
