"""Load an Ansible inventory: the hosts walguard audits and how to reach them.

Sources, and who reads them
---------------------------
walguard reads the two common formats itself, so the common case needs no Ansible; anything else
is read by Ansible (`walguard.inventory.ansible`) when ansible-core is installed
(``pip install 'walguard[ansible]'``), and is otherwise an error that says so. The source named
by ``--inventory`` is classified in this order; the first rule that applies decides:

1. ``--vault-password-file`` or ``--vault-id`` given: Ansible (only it decrypts Vault).
2. A path that does not exist: Ansible if it holds a comma (a host list, ``db1,db2,``), else
   "not found".
3. A directory: if, leaving out what Ansible leaves out (hidden names, ``group_vars``,
   ``host_vars``, ``vars_plugins``, ``*.md``, ``*.txt``, ``*.cfg``, backups ...), it holds exactly
   one file and rules 4-8 give that file to walguard, walguard reads it; else Ansible (a
   directory of sources, as ansible-inventory reads it).
4. A Vault-encrypted file (``$ANSIBLE_VAULT;``): Ansible.
5. An executable file starting with ``#!`` (or an ELF binary): Ansible, as an inventory script.
6. ``*.yml``/``*.yaml``: Ansible if a top-level ``plugin:`` key names an inventory plugin
   (``aws_ec2``, ``constructed``, ``vmware_vm_inventory`` ...), else walguard's YAML reader.
   ``*.json``: walguard's YAML reader. ``*.toml``: Ansible.
7. ``*.ini``: walguard's INI reader (`walguard.inventory.ini`). Any other file (no extension,
   any other extension): walguard's YAML reader if its first line that is neither blank nor a
   comment opens YAML (``---``, ``{``, ``all:``), else its INI reader, as Ansible tries its yaml
   plugin before its ini plugin.

The YAML format
---------------
Ansible's YAML inventory: a top-level ``all`` group whose groups have ``hosts`` (host name ->
variables or null), ``vars`` and ``children`` (nested groups). Host names may hold ranges as
Ansible's do: ``db[01:20]`` (zero padding kept), ``web[1:3]``, ``node[a:c]`` and a stride,
``db[1:10:2]``. Variables also come from ``group_vars/`` and ``host_vars/`` beside the inventory
file (``<name>``, ``<name>.yml``, ``<name>.yaml``, ``<name>.json``, or a directory ``<name>/``
whose files are read in sorted order); the same holds for INI inventories.

Variables merge with Ansible's default precedence (``VARIABLE_PRECEDENCE``), lowest first:

1. ``all`` vars in the inventory file;
2. the other groups' vars in the inventory file, parents before children;
3. ``group_vars/all``;
4. ``group_vars/<group>``, parents before children;
5. host vars in the inventory file (a host listed under several groups: the later wins);
6. ``host_vars/<host>``.

Groups are ordered by depth below ``all`` (the longest path), then ``ansible_group_priority``
(default 1, set in the inventory file; like Ansible, it orders groups and is no variable), then
name, as Ansible sorts them. Merging is shallow: a later value replaces the whole variable. Note
that any ``group_vars/`` file beats every group's vars in the inventory file, child groups
included: that is Ansible's behaviour, kept so that an inventory means the same to walguard as
to the playbooks that built the hosts. Through Ansible, Ansible merges and walguard takes the
result.

Anything walguard cannot be sure it reads as Ansible would (duplicate keys, Vault values,
unknown group keys, two files for the same group_vars name, a malformed range) is an error, and
every host's walguard_* policy is validated at load time, so that a bad inventory fails before
any host is contacted. Ansible's password variables (``ansible_become_password`` ...) are kept
as `Secret`s, shown as a placeholder; walguard never needs them, and an error that quotes
inventory text hides what follows their names.

Whatever the source, its values are data: every host and group name is one plain name
(`walguard.inventory.model.bad_name`: it becomes a directory name and an ssh destination),
the ssh arguments are an allow-list of options (`walguard.inventory.ssh_options`), YAML aliases
expand
to a bounded size (`walguard.yaml_limit`) and so do the hosts' copies of their variables.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walguard.inventory.ansible import VaultOptions, run_ansible_inventory, targets_from_listing
from walguard.inventory.build import Builder, Group
from walguard.inventory.ini import read_ini
from walguard.inventory.model import (
    InventoryError,
    Origin,
    Secret,
    Target,
    fail,
    host_names,
    kind,
    shown,
)
from walguard.inventory.yaml_reader import VAULT_FILE_HEADER, YamlMap, layer, read_yaml

__all__ = [
    "Inventory",
    "InventoryError",
    "Secret",
    "Target",
    "VaultOptions",
    "classify",
    "load_inventory",
    "read_inventory",
]


@dataclass(frozen=True)
class Inventory:
    """The hosts of one source, and what ansible-inventory answered when it was asked (so that
    xdist workers build the same targets without running a dynamic inventory again)."""

    targets: list[Target]
    listing: str | None = None


def load_inventory(source: Path | str, vault: VaultOptions | None = None) -> list[Target]:
    """Every host of the inventory `source`, in order of first appearance.

    Raises InventoryError for any problem, before returning anything.
    """
    return read_inventory(source, vault).targets


def read_inventory(source: Path | str, vault: VaultOptions | None = None) -> Inventory:
    vault = vault or VaultOptions()
    reader, path, why = classify(str(source), vault)
    if reader == "yaml" and path is not None:
        return Inventory(_YamlReader(path).read())
    if reader == "ini" and path is not None:
        return Inventory(read_ini(path))
    listing = run_ansible_inventory(str(source), vault, why)
    return Inventory(targets_from_listing(listing, str(source)), listing)


# --- which reader -----------------------------------------------------------------------------

# Ansible's INVENTORY_IGNORE_EXTS (REJECT_EXTS + .orig, .cfg, .retry) and IGNORED_ALWAYS.
_IGNORED = re.compile(
    r"^\.|^host_vars$|^group_vars$|^vars_plugins$"
    r"|(\.pyc|\.pyo|\.swp|\.bak|~|\.rpm|\.md|\.txt|\.rst|\.orig|\.cfg|\.retry)$"
)
_PLUGIN_KEY = re.compile(r"^['\"]?plugin['\"]?[ \t]*:", re.MULTILINE)
_YAML_START = re.compile(r"---|%YAML|\{|['\"]?[^\s=\[\]:#;'\"]+['\"]?:(\s|$)")


def classify(source: str, vault: VaultOptions | None = None) -> tuple[str, Path | None, str]:
    """("yaml" | "ini", the file walguard reads, "") or ("ansible", None, what the source is):
    the rules in the module docstring."""
    if vault:
        return "ansible", None, "Vault options were given"
    path = Path(source)
    if not path.exists():
        if "," in source:
            return "ansible", None, "a comma-separated host list"
        raise InventoryError(f"{source}: inventory file not found")
    if path.is_dir():
        try:
            entries = [e for e in sorted(path.iterdir()) if not _IGNORED.search(e.name)]
        except OSError as exc:
            raise InventoryError(f"{path}: cannot list: {exc.strerror or exc}") from None
        if not entries:
            raise InventoryError(
                f"{path}: inventory directory holds no inventory file (only group_vars, "
                "host_vars and files Ansible ignores)"
            )
        if len(entries) == 1 and entries[0].is_file():
            reader, file, why = _classify_file(entries[0])
            if reader != "ansible":
                return reader, file, why
        return "ansible", None, "a directory of inventory sources"
    if not path.is_file():
        raise InventoryError(f"{path}: inventory is neither a file nor a directory")
    return _classify_file(path)


def _classify_file(path: Path) -> tuple[str, Path | None, str]:
    try:
        with path.open("rb") as file:
            head = file.read(65536)
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read inventory file: {exc.strerror or exc}") from None
    text = head.decode("utf-8", errors="replace")
    if text.lstrip().startswith(VAULT_FILE_HEADER):
        return "ansible", None, "a Vault-encrypted file"
    if os.access(path, os.X_OK) and head.startswith((b"#!", b"\x7fELF")):
        return "ansible", None, "an executable inventory script"
    suffix = path.suffix.lower()
    if suffix in (".yml", ".yaml"):
        if _PLUGIN_KEY.search(text):
            return "ansible", None, "an inventory plugin configuration (a top-level plugin: key)"
        return "yaml", path, ""
    if suffix == ".json":
        return "yaml", path, ""
    if suffix == ".toml":
        return "ansible", None, "a TOML inventory"
    if suffix == ".ini":
        return "ini", path, ""
    for line in text.splitlines():
        line = line.strip()
        if line and line[0] not in "#;":
            return ("yaml" if _YAML_START.match(line) else "ini"), path, ""
    return "ini", path, ""  # blank or comments only: the INI reader says there are no hosts


# --- the YAML reader --------------------------------------------------------------------------


class _YamlReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.inv = Builder(path, vars_dir=path.parent)

    def read(self) -> list[Target]:
        self.parse(read_yaml(self.path, "inventory file"))
        return self.inv.targets()

    def parse(self, doc: Any) -> None:
        if not isinstance(doc, YamlMap):
            got = "an empty file" if doc is None else kind(doc)
            raise InventoryError(
                f"{self.path}: expected an Ansible YAML inventory (a mapping with a top-level "
                f"'all' group), got {got}"
            )
        if "all" not in doc:
            found = ", ".join(shown(str(key)) for key in doc) or "nothing"
            fail(self.inv.origin(doc.line), "top level", f"expected an 'all' group, found {found}")
        for name, body in doc.items():
            # Other top-level groups are children of all, as in Ansible.
            parent = None if name == "all" else self.inv.groups["all"]
            self.group(name, body, parent, str(name), doc.key_lines.get(name))

    def group(
        self, name: Any, body: Any, parent: Group | None, where: str, line: int | None
    ) -> None:
        origin = self.inv.origin(line)
        group = self.inv.group(name, origin, where)
        if parent is not None:
            self.inv.add_child(parent, group, origin, where)
        if body is None:
            return
        if not isinstance(body, YamlMap):
            fail(
                origin,
                where,
                f"expected a group (a mapping with hosts, vars and/or children), got {kind(body)}",
            )
        for key, value in body.items():
            key_where = f"{where}.{key}"
            key_line = body.key_lines.get(key)
            if key == "vars":
                self.inv.set_group_vars(group, layer(value, key_where, self.inv.origin(key_line)))
            elif key == "children":
                self.children(group, value, key_where, key_line)
            elif key == "hosts":
                self.group_hosts(group, value, key_where, key_line)
            else:
                # Ansible skips unknown keys with a warning; a misspelt `host:` would drop hosts
                # from the audit without anyone noticing.
                fail(
                    self.inv.origin(key_line),
                    key_where,
                    f"unexpected key {shown(str(key))} in group {shown(str(name))}; "
                    "expected only hosts, vars and children",
                )

    def children(self, group: Group, value: Any, where: str, line: int | None) -> None:
        if value is None:
            return
        if not isinstance(value, YamlMap):
            fail(
                self.inv.origin(line),
                where,
                f"expected a mapping of child group names to groups, got {kind(value)}",
            )
        for child, body in value.items():
            self.group(child, body, group, f"{where}.{child}", value.key_lines.get(child))

    def group_hosts(self, group: Group, value: Any, where: str, line: int | None) -> None:
        if value is None:
            return
        if not isinstance(value, YamlMap):
            hint = (
                " (write each host as a key, `db1:` on its own line)"
                if isinstance(value, list)
                else ""
            )
            fail(
                self.inv.origin(line),
                where,
                f"expected a mapping of host names to their variables, got {kind(value)}{hint}",
            )
        for pattern, host_vars in value.items():
            host_where = f"{where}.{pattern}"
            origin: Origin = self.inv.origin(value.key_lines.get(pattern))
            if not isinstance(pattern, str):
                fail(origin, host_where, f"host name {pattern!r}: expected a string (quote it)")
            names = host_names(pattern, host_where, origin)
            found = layer(host_vars, host_where, origin)
            for name in names:
                self.inv.add_host(name, group, found, origin, host_where)
