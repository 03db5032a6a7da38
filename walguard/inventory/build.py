"""The one builder behind every inventory reader: groups, hosts and variables in, `Target`s out,
with Ansible's variable precedence (documented in `walguard.inventory.load`).

The YAML and INI readers feed it what they parsed, each value with the file and line it came
from; the ansible-inventory route feeds it hosts whose variables Ansible has already merged.
Internal to `walguard.inventory.load`.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from walguard.inventory.host_copies import CopyBudget, plain
from walguard.inventory.model import (
    DIGITS,
    Connection,
    InventoryError,
    Layer,
    Origin,
    Secret,
    Target,
    bad_name,
    check_host_name,
    fail,
    is_secret_name,
    kind,
    shown,
)
from walguard.inventory.yaml_reader import layer, read_yaml
from walguard.policy.model import PolicyError, settings_for

_VARS_EXTENSIONS = ("", ".yml", ".yaml", ".json")


@dataclass
class Group:
    name: str
    vars: Layer = field(default_factory=dict)
    parents: set[str] = field(default_factory=set)
    priority: int = 1


@dataclass
class Host:
    name: str
    vars: Layer = field(default_factory=dict)
    groups: set[str] = field(default_factory=set)


class Builder:
    """Groups and hosts as a reader declares them; `targets()` merges and checks everything."""

    def __init__(self, path: Path | str, *, vars_dir: Path | None) -> None:
        self.path = path  # what errors about the whole inventory name
        # Where group_vars/ and host_vars/ are read from; None when Ansible has read them.
        self.vars_dir = vars_dir
        self.groups: dict[str, Group] = {"all": Group("all")}
        self.hosts: dict[str, Host] = {}  # in order of first appearance
        self.files: dict[tuple[str, str], Layer] = {}
        self.copies = CopyBudget()

    def origin(self, line: int | None) -> Origin:
        return Origin(self.path, line)

    # -- what readers declare --

    def group(self, name: Any, origin: Origin, where: str) -> Group:
        if not isinstance(name, str):
            fail(origin, where, f"group name {name!r}: expected a string")
        if (why := bad_name(name)) is not None:
            fail(origin, where, f"group name {shown(name)} has {why}; expected a plain name")
        return self.groups.setdefault(name, Group(name))

    def add_child(self, parent: Group, child: Group, origin: Origin, where: str) -> None:
        if child.name == "all":
            fail(origin, where, "'all' is the root group; expected it at the top level only")
        child.parents.add(parent.name)

    def set_group_vars(self, group: Group, found: Layer) -> None:
        found = dict(found)
        if "ansible_group_priority" in found:
            # Ansible's Group.set_variable: it orders the group, and is no variable.
            priority, origin = found.pop("ansible_group_priority")
            # Ansible converts with int(), so a quoted "10" works there and must here.
            if isinstance(priority, str) and DIGITS.fullmatch(priority.strip()):
                priority = int(priority)
            if not isinstance(priority, int) or isinstance(priority, bool):
                fail(
                    origin,
                    f"group {group.name}: ansible_group_priority",
                    f"expected an integer, got {kind(priority)}",
                )
            group.priority = priority
        group.vars.update(found)

    def add_host(self, name: str, group: Group, found: Layer, origin: Origin, where: str) -> None:
        check_host_name(name, where, origin)  # every reader's hosts, whatever it checked
        host = self.hosts.setdefault(name, Host(name))
        host.groups.add(group.name)
        host.vars.update(found)

    # -- the result --

    def targets(self) -> list[Target]:
        if not self.hosts:
            raise InventoryError(
                f"inventory {self.path} has no hosts: an audit of nothing is never a green run"
            )
        # Memberships first: they may add the implicit group ungrouped, which needs a depth too.
        memberships = {name: self.host_groups(host) for name, host in self.hosts.items()}
        depths = self.depths()
        merged = {
            name: self.merged(host, memberships[name], depths) for name, host in self.hosts.items()
        }
        # Every host's copy is counted before any is made, so that too much fails at once.
        for name, found in merged.items():
            for key, (value, origin) in found.items():
                try:
                    self.copies.spend(value)
                except RecursionError:
                    fail(origin, f"host {name}: {key}", "expected a value, got a recursive alias")
                except ValueError as exc:
                    fail(origin, f"host {name}: {key}", str(exc))
        return [
            self.target(host, memberships[name], merged[name]) for name, host in self.hosts.items()
        ]

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

    def host_groups(self, host: Host) -> set[str]:
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
            self.groups.setdefault("ungrouped", Group("ungrouped", parents={"all"}))
        else:
            groups.discard("ungrouped")
        return groups

    def vars_files(self, kind: str, name: str) -> Layer:
        if self.vars_dir is None:
            return {}
        if (kind, name) not in self.files:
            found: Layer = {}
            for file in self.find_vars_files(self.vars_dir / kind, kind, name):
                data = read_yaml(file, f"{kind} file")
                found.update(layer(data, "top level", Origin(file, 1)))
            self.files[kind, name] = found
        return self.files[kind, name]

    @staticmethod
    def find_vars_files(base: Path, kind: str, name: str) -> list[Path]:
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

    def merged(self, host: Host, groups: set[str], depths: dict[str, int]) -> Layer:
        """The host's variables, each with where it was set, in Ansible's precedence."""
        ordered = sorted(groups - {"all"}, key=lambda g: (depths[g], self.groups[g].priority, g))
        merged: Layer = dict(self.groups["all"].vars)
        for name in ordered:
            merged.update(self.groups[name].vars)
        merged.update(self.vars_files("group_vars", "all"))
        for name in ordered:
            merged.update(self.vars_files("group_vars", name))
        merged.update(host.vars)
        merged.update(self.vars_files("host_vars", host.name))
        return merged

    def target(self, host: Host, groups: set[str], merged: Layer) -> Target:
        values: dict[str, Any] = {}
        for key, (value, _) in merged.items():
            values[key] = plain(value, set())  # no loop: `targets` has measured every value
            if is_secret_name(key) and not isinstance(values[key], Secret):
                values[key] = Secret(values[key])
        conn = Connection(host.name, merged)
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
            address=conn.address(host.name),
            port=conn.port(),
            user=conn.user(),
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
