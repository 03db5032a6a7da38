"""Load an Ansible-style YAML inventory: the hosts walguard audits and how to reach them.

The format is Ansible's YAML inventory: a top-level ``all`` group whose groups have ``hosts``
(host name -> variables or null), ``vars`` and ``children`` (nested groups). Host names may hold
ranges as Ansible's do: ``db[01:20]`` (zero padding kept), ``web[1:3]``, ``node[a:c]`` and a
stride, ``db[1:10:2]``. Variables also come from ``group_vars/`` and ``host_vars/`` beside the
inventory file (``<name>``, ``<name>.yml``, ``<name>.yaml``, ``<name>.json``, or a directory
``<name>/`` whose files are read in sorted order).

Variables merge with Ansible's default precedence (``VARIABLE_PRECEDENCE``), lowest first:

1. ``all`` vars in the inventory file;
2. the other groups' vars in the inventory file, parents before children;
3. ``group_vars/all``;
4. ``group_vars/<group>``, parents before children;
5. host vars in the inventory file (a host listed under several groups: the later wins);
6. ``host_vars/<host>``.

Groups are ordered by depth below ``all`` (the longest path), then ``ansible_group_priority``
(default 1, set in the inventory file), then name, as Ansible sorts them. Merging is shallow:
a later value replaces the whole variable. Note that any ``group_vars/`` file beats every group's
vars in the inventory file, child groups included: that is Ansible's behaviour, kept so that an
inventory means the same to walguard as to the playbooks that built the hosts.

Anything walguard cannot be sure it reads as Ansible would (duplicate keys, Vault values,
unknown group keys, two files for the same group_vars name, a malformed range) is an error, and
every host's walguard_* policy is validated at load time, so that a bad inventory fails before
any host is contacted.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import string
import types
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import yaml

from walguard.policy import Connect, Policy, PolicyError, settings_for


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
    # Excluded from the hash (a mapping is unhashable) but still compared.
    vars: Mapping[str, Any] = field(hash=False)
    # Built once from the vars when the inventory is read: what to expect, how to connect.
    policy: Policy = field(default_factory=Policy, hash=False)
    connect: Connect = field(default_factory=Connect, hash=False)
    # ansible_ssh_common_args as an argument list (never through a shell).
    ssh_args: tuple[str, ...] = ()


def load_inventory(path: Path) -> list[Target]:
    """Every host of the inventory at `path`, in order of first appearance in the file.

    Raises InventoryError for any problem, before returning anything.
    """
    return _Inventory(Path(path)).targets()


# --- YAML loading -----------------------------------------------------------------------------

_MERGE_TAG = "tag:yaml.org,2002:merge"
_VAULT_TAG = "!vault"
_VAULT_FILE_HEADER = "$ANSIBLE_VAULT;"
_VAULT_UNSUPPORTED = (
    "Ansible Vault values are not supported by walguard (it never decrypts secrets, and needs "
    "none); keep this variable out of the inventory walguard reads"
)


class _Problem(Exception):
    """A problem found while constructing YAML, before the file name is known to be attached."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers where it and each of its keys are, for error messages."""

    line: int
    key_lines: dict[Any, int]


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and Vault values and records line numbers."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue  # keys from a `<<` merge may be overridden; that is what merges are for
            line = key_node.start_mark.line + 1
            key = self.construct_object(key_node, deep=True)
            if value_node.tag == _VAULT_TAG:
                raise _Problem(line, f"{key}: {_VAULT_UNSUPPORTED}")
            try:
                first = seen.get(key)
            except TypeError:
                continue  # unhashable: the base class reports it with its own message
            if first is not None:
                # PyYAML would keep the last value silently; Ansible only warns. Either way the
                # first definition is lost, e.g. a host listed twice in one group's hosts.
                raise _Problem(
                    line,
                    f"duplicate key {key!r} in this mapping (first at line {first}); "
                    "expected each key once",
                )
            seen[key] = line
        return super().construct_mapping(node, deep)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map()
    data.line = node.start_mark.line + 1
    data.key_lines = {}
    yield data  # yielded first, as SafeLoader does, so that recursive aliases resolve
    data.update(loader.construct_mapping(node))
    # After construct_mapping the node is flattened: merged keys first, then its own, so a key
    # set here wins over a merged one, as its value does.
    for key_node, _ in node.value:
        # Unhashable keys never get here: construct_mapping has refused them.
        data.key_lines[loader.construct_object(key_node)] = key_node.start_mark.line + 1


def _construct_vault(loader: _Loader, node: yaml.Node) -> NoReturn:
    raise _Problem(node.start_mark.line + 1, _VAULT_UNSUPPORTED)


def _construct_unsafe(loader: _Loader, node: yaml.Node) -> str:
    # Ansible's !unsafe only stops templating, and walguard never templates: a plain string.
    if not isinstance(node, yaml.ScalarNode):
        raise _Problem(node.start_mark.line + 1, "!unsafe applies to strings only")
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor(_VAULT_TAG, _construct_vault)
_Loader.add_constructor("!unsafe", _construct_unsafe)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _read_yaml(file: Path, what: str) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{file}: {what} not found") from None
    except IsADirectoryError:
        raise InventoryError(f"{file}: {what} is a directory, expected a YAML file") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(
            f"{file}: {what} is not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    except OSError as exc:
        raise InventoryError(f"{file}: cannot read {what}: {exc.strerror or exc}") from None
    if text.lstrip().startswith(_VAULT_FILE_HEADER):
        raise InventoryError(f"{file}:1: the whole file is Vault-encrypted; {_VAULT_UNSUPPORTED}")
    loader = None
    try:
        loader = _Loader(text)
        return loader.get_single_data()
    except _Problem as exc:
        raise InventoryError(f"{file}:{exc.line}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
        problem = exc.problem or "a syntax error"
        context = f" ({exc.context})" if exc.context else ""
        # PyYAML's block errors are how a misindented line shows up, and read like anything but.
        hint = "; check the indentation" if "block" in problem else ""
        raise InventoryError(
            f"{where}: invalid YAML in {what}: {_one_line(problem + context)}{hint}"
        ) from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{file}: invalid YAML in {what}: {_one_line(str(exc))}") from None
    finally:
        if loader is not None:
            loader.dispose()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
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


# --- host ranges ------------------------------------------------------------------------------

_RANGE = re.compile(r"\[([^\[\]]*)\]")
_DIGITS = re.compile(r"[0-9]+")
# A typo such as db[1:1000000] would otherwise build a million hosts before anything is said.
_MAX_HOSTS_PER_PATTERN = 10_000


def _expand_range(pattern: str) -> list[str]:
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
    if not _DIGITS.fullmatch(step_text) or int(step_text) < 1:
        raise ValueError(f"range [{spec}]: expected a step that is a positive integer")
    step = int(step_text)
    items: list[str]
    if _DIGITS.fullmatch(start) and _DIGITS.fullmatch(end):
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
        if (high - low) // step + 1 > _MAX_HOSTS_PER_PATTERN:
            raise ValueError(
                f"range [{spec}]: more than {_MAX_HOSTS_PER_PATTERN} hosts; "
                "expected a smaller range"
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
        names.extend(_expand_range(head + item + tail))
        if len(names) > _MAX_HOSTS_PER_PATTERN:
            raise ValueError(f"more than {_MAX_HOSTS_PER_PATTERN} hosts; expected smaller ranges")
    return names


# --- inventory model --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Origin:
    file: Path
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else str(self.file)


# variable name -> (value, where it was set)
_Layer = dict[str, tuple[Any, _Origin]]


@dataclass
class _Group:
    name: str
    vars: _Layer = field(default_factory=dict)
    parents: set[str] = field(default_factory=set)
    priority: int = 1


@dataclass
class _Host:
    name: str
    vars: _Layer = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)


def _fail(origin: _Origin, where: str, problem: str) -> NoReturn:
    raise InventoryError(f"{origin}: {where}: {problem}")


def _layer(value: Any, where: str, origin: _Origin) -> _Layer:
    """A mapping of variables with where each was set."""
    if value is None:
        return {}
    if not isinstance(value, _Map):
        _fail(origin, where, f"expected a mapping of variable names to values, got {_kind(value)}")
    layer: _Layer = {}
    for key, item in value.items():
        key_origin = _Origin(origin.file, value.key_lines.get(key, origin.line))
        if not isinstance(key, str) or not key:
            _fail(key_origin, where, f"variable name {key!r}: expected a non-empty string")
        layer[key] = (item, key_origin)
    return layer


_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")
_TRUE = frozenset({"y", "yes", "on", "1", "true", "t"})
_FALSE = frozenset({"n", "no", "off", "0", "false", "f"})


def _bad_name(name: str) -> str | None:
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


class _Inventory:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.groups: dict[str, _Group] = {"all": _Group("all")}
        self.hosts: dict[str, _Host] = {}  # in order of first appearance
        self.files: dict[tuple[str, str], _Layer] = {}

    def origin(self, line: int | None) -> _Origin:
        return _Origin(self.path, line)

    # -- the inventory file --

    def targets(self) -> list[Target]:
        self.parse(_read_yaml(self.path, "inventory file"))
        if not self.hosts:
            raise InventoryError(
                f"inventory {self.path} has no hosts: an audit of nothing is never a green run"
            )
        # Memberships first: they may add the implicit group ungrouped, which needs a depth too.
        memberships = {name: self.host_groups(host) for name, host in self.hosts.items()}
        depths = self.depths()
        return [self.target(host, memberships[name], depths) for name, host in self.hosts.items()]

    def parse(self, doc: Any) -> None:
        if not isinstance(doc, _Map):
            got = "an empty file" if doc is None else _kind(doc)
            raise InventoryError(
                f"{self.path}: expected an Ansible YAML inventory (a mapping with a top-level "
                f"'all' group), got {got}"
            )
        if "all" not in doc:
            found = ", ".join(repr(key) for key in doc) or "nothing"
            _fail(self.origin(doc.line), "top level", f"expected an 'all' group, found {found}")
        for name, body in doc.items():
            # Other top-level groups are children of all, as in Ansible.
            parent = None if name == "all" else "all"
            self.group(name, body, parent, str(name), doc.key_lines.get(name))

    def group(self, name: Any, body: Any, parent: str | None, where: str, line: int | None) -> None:
        origin = self.origin(line)
        if not isinstance(name, str):
            _fail(origin, where, f"group name {name!r}: expected a string")
        if (why := _bad_name(name)) is not None:
            _fail(origin, where, f"group name {name!r} has {why}; expected a plain name")
        group = self.groups.setdefault(name, _Group(name))
        if parent is not None:
            if name == "all":
                _fail(origin, where, "'all' is the root group; expected it at the top level only")
            group.parents.add(parent)
        if body is None:
            return
        if not isinstance(body, _Map):
            _fail(
                origin,
                where,
                f"expected a group (a mapping with hosts, vars and/or children), got {_kind(body)}",
            )
        for key, value in body.items():
            key_where = f"{where}.{key}"
            key_line = body.key_lines.get(key)
            if key == "vars":
                self.group_vars(group, value, key_where, key_line)
            elif key == "children":
                self.children(group, value, key_where, key_line)
            elif key == "hosts":
                self.group_hosts(group, value, key_where, key_line)
            else:
                # Ansible skips unknown keys with a warning; a misspelt `host:` would drop hosts
                # from the audit without anyone noticing.
                _fail(
                    self.origin(key_line),
                    key_where,
                    f"unexpected key {key!r} in group {name!r}; "
                    "expected only hosts, vars and children",
                )

    def group_vars(self, group: _Group, value: Any, where: str, line: int | None) -> None:
        layer = _layer(value, where, self.origin(line))
        if "ansible_group_priority" in layer:
            priority, origin = layer["ansible_group_priority"]
            if not isinstance(priority, int) or isinstance(priority, bool):
                _fail(
                    origin,
                    f"{where}.ansible_group_priority",
                    f"expected an integer, got {_kind(priority)}",
                )
            group.priority = priority
        group.vars.update(layer)

    def children(self, group: _Group, value: Any, where: str, line: int | None) -> None:
        if value is None:
            return
        if not isinstance(value, _Map):
            _fail(
                self.origin(line),
                where,
                f"expected a mapping of child group names to groups, got {_kind(value)}",
            )
        for child, body in value.items():
            self.group(child, body, group.name, f"{where}.{child}", value.key_lines.get(child))

    def group_hosts(self, group: _Group, value: Any, where: str, line: int | None) -> None:
        if value is None:
            return
        if not isinstance(value, _Map):
            hint = (
                " (write each host as a key, `db1:` on its own line)"
                if isinstance(value, list)
                else ""
            )
            _fail(
                self.origin(line),
                where,
                f"expected a mapping of host names to their variables, got {_kind(value)}{hint}",
            )
        for pattern, host_vars in value.items():
            host_where = f"{where}.{pattern}"
            origin = self.origin(value.key_lines.get(pattern))
            names = self.host_names(pattern, host_where, origin)
            layer = _layer(host_vars, host_where, origin)
            for name in names:
                host = self.hosts.setdefault(name, _Host(name))
                host.groups.add(group.name)
                host.vars.update(layer)

    def host_names(self, pattern: Any, where: str, origin: _Origin) -> list[str]:
        if not isinstance(pattern, str):
            _fail(origin, where, f"host name {pattern!r}: expected a string (quote it)")
        try:
            names = _expand_range(pattern)
        except ValueError as exc:
            _fail(origin, where, str(exc))
        for name in names:
            if (why := _bad_name(name)) is not None:
                _fail(origin, where, f"host name {name!r} has {why}; expected a host name")
            if ":" in name and not _is_ipv6(name):
                _fail(
                    origin,
                    where,
                    f"host name {name!r}: host:port is not supported; expected the port in "
                    "ansible_port",
                )
        return names

    # -- groups --

    def depths(self) -> dict[str, int]:
        """Each group's depth below all (its longest path), refusing loops of children."""
        depths = {"all": 0}
        chain: list[str] = []

        def depth(name: str) -> int:
            if name in depths:
                return depths[name]
            if name in chain:
                loop = " -> ".join(reversed([*chain[chain.index(name) :], name]))
                raise InventoryError(
                    f"{self.path}: children: groups form a loop ({loop}); expected a hierarchy"
                )
            chain.append(name)
            parents = self.groups[name].parents or {"all"}
            depths[name] = 1 + max(depth(parent) for parent in sorted(parents))
            chain.pop()
            return depths[name]

        for name in list(self.groups):
            depth(name)
        return depths

    def host_groups(self, host: _Host) -> set[str]:
        groups: set[str] = set()
        pending = list(host.groups)
        while pending:
            name = pending.pop()
            if name not in groups:
                groups.add(name)
                pending.extend(self.groups[name].parents)
        groups.add("all")
        # Ansible's implicit group: hosts in no group but all, and only those.
        if groups <= {"all", "ungrouped"}:
            groups.add("ungrouped")
            self.groups.setdefault("ungrouped", _Group("ungrouped", parents={"all"}))
        else:
            groups.discard("ungrouped")
        return groups

    # -- group_vars/ and host_vars/ --

    def vars_files(self, kind: str, name: str) -> _Layer:
        if (kind, name) not in self.files:
            layer: _Layer = {}
            for file in self.find_vars_files(kind, name):
                data = _read_yaml(file, f"{kind} file")
                layer.update(_layer(data, "top level", _Origin(file, 1)))
            self.files[kind, name] = layer
        return self.files[kind, name]

    def find_vars_files(self, kind: str, name: str) -> list[Path]:
        base = self.path.parent / kind
        found = [base / (name + ext) for ext in _VARS_EXTENSIONS if (base / (name + ext)).exists()]
        if len(found) > 1:
            # Ansible reads only the first and ignores the rest without a word.
            raise InventoryError(
                f"{found[1]}: {kind} for {name!r} also in {found[0]}; Ansible would read only "
                f"{found[0].name}: expected one of them"
            )
        if not found:
            return []
        if found[0].is_dir():
            return _dir_vars_files(found[0])
        return found

    # -- the result --

    def target(self, host: _Host, groups: set[str], depths: dict[str, int]) -> Target:
        ordered = sorted(groups - {"all"}, key=lambda g: (depths[g], self.groups[g].priority, g))
        merged: _Layer = dict(self.groups["all"].vars)
        for name in ordered:
            merged.update(self.groups[name].vars)
        merged.update(self.vars_files("group_vars", "all"))
        for name in ordered:
            merged.update(self.vars_files("group_vars", name))
        merged.update(host.vars)
        merged.update(self.vars_files("host_vars", host.name))

        values: dict[str, Any] = {}
        for key, (value, origin) in merged.items():
            try:
                values[key] = _plain(value, set())
            except RecursionError:
                _fail(origin, f"host {host.name}: {key}", "expected a value, got a recursive alias")
        conn = _Connection(host.name, merged)
        try:
            connect, policy = settings_for(
                values, host=host.name, sources={k: str(o) for k, (_, o) in merged.items()}
            )
        except PolicyError as exc:
            raise InventoryError(
                f"{exc.source or self.path}: host {exc.host}: {exc.key}: {exc.problem}"
            ) from None
        return Target(
            name=host.name,
            address=conn.text("ansible_host", "ansible_ssh_host") or host.name,
            port=conn.port(),
            user=conn.text("ansible_user", "ansible_ssh_user"),
            key_file=conn.text("ansible_ssh_private_key_file", "ansible_private_key_file"),
            become=conn.become(),
            groups=tuple(sorted(groups)),
            vars=types.MappingProxyType(values),
            policy=policy,
            connect=connect,
            ssh_args=conn.ssh_args(),
        )


def _dir_vars_files(directory: Path) -> list[Path]:
    """Ansible's walk of a group_vars/<name>/ directory: sorted, recursive, skipping hidden."""
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise InventoryError(f"{directory}: cannot list: {exc.strerror or exc}") from None
    files: list[Path] = []
    for entry in entries:
        if entry.name.startswith(".") or entry.name.endswith("~"):
            continue
        if entry.is_dir():
            if not entry.suffix:
                files.extend(_dir_vars_files(entry))
        elif entry.is_file() and entry.suffix in _VARS_EXTENSIONS:
            files.append(entry)
    return files


def _is_ipv6(name: str) -> bool:
    try:
        ipaddress.IPv6Address(name)
    except ValueError:
        return False
    return True


def _plain(value: Any, active: set[int]) -> Any:
    """A private copy, made of plain dicts and lists, so no host can change another's vars."""
    if isinstance(value, dict | list):
        if id(value) in active:
            raise RecursionError
        active = active | {id(value)}
        if isinstance(value, dict):
            return {key: _plain(item, active) for key, item in value.items()}
        return [_plain(item, active) for item in value]
    return value


# Characters that only mean something to a shell: in ssh options they are a mistake or an attack.
_SHELL_META = frozenset("$`;|&<>()\n")


class _Connection:
    """The ansible_* connection variables of one host, checked."""

    def __init__(self, host: str, merged: _Layer) -> None:
        self.host = host
        self.merged = merged

    def pick(self, name: str, alias: str | None = None) -> tuple[str, Any, _Origin] | None:
        found = [(n, *self.merged[n]) for n in (name, alias) if n and n in self.merged]
        if len(found) == 2 and found[0][1] != found[1][1]:
            # Ansible lets the alias win, which few people know; refuse rather than guess.
            _fail(
                found[1][2],
                f"host {self.host}: {alias}",
                f"conflicts with {name} (set in {found[0][2]}); expected only one of them",
            )
        if not found or found[0][1] is None:
            return None
        return found[0]

    def fail(self, picked: tuple[str, Any, _Origin], expected: str) -> NoReturn:
        key, value, origin = picked
        _fail(origin, f"host {self.host}: {key}", f"expected {expected}, got {_kind(value)}")

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
        if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
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
            _fail(
                origin,
                f"host {self.host}: {key}",
                f"shell metacharacters {' '.join(bad)} are not allowed (walguard passes ssh "
                "options as arguments, never through a shell)",
            )
        try:
            return tuple(shlex.split(value))
        except ValueError as exc:
            _fail(origin, f"host {self.host}: {key}", f"cannot split {value!r}: {exc}")

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
