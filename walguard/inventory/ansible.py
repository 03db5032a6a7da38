"""Inventory sources walguard does not read itself, read by Ansible: inventory plugins (cloud,
VMware, ``constructed`` ...), scripts, directories mixing sources, host lists, Vault.

walguard runs, as an argument list and never through a shell::

    ansible-inventory --list --inventory=SOURCE [--vault-id=ID ...] [--vault-password-file=FILE ...]

with stdin from /dev/null, no controlling terminal (so nothing can prompt for a password) and
``ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED`` / ``ANSIBLE_INVENTORY_UNPARSED_FAILED`` set, so that
a source no plugin can read is an error rather than a warning and an inventory without it. The
user's ansible.cfg and ANSIBLE_* environment apply as for their playbooks (a
``vault_password_file`` there works too). Its JSON answer is taken as Ansible resolved it: the
groups (``hosts``, ``children``) and each host's variables in ``_meta.hostvars``, already merged
with Ansible's precedence, group_vars/ and host_vars/ included; walguard then builds and checks
the same `Target`s as from its own readers.

ansible-inventory leaves inline ``!vault`` values encrypted in its answer (``__ansible_vault``);
they become `Secret`s. Variables from a Vault-encrypted vars file arrive decrypted: Ansible's
password variables among them are `Secret`s too, and `Target` leaves all variables out of its
repr. walguard never needs any of them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walguard.inventory.build import Builder
from walguard.inventory.model import (
    InventoryError,
    Layer,
    Origin,
    Secret,
    Target,
    check_host_name,
    fail,
    masked,
)

INSTALL_HINT = "pip install 'walguard[ansible]'"
TIMEOUT_S = 300
_ENV = {
    "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
    "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
    "ANSIBLE_ASK_VAULT_PASS": "False",
    "ANSIBLE_NOCOLOR": "True",
    "ANSIBLE_FORCE_COLOR": "False",
}
_ERROR = re.compile(r"^\[ERROR\]: (.*)$", re.MULTILINE)
_PLUGIN_FAILED = re.compile(
    r"^\[WARNING\]: Failed to parse inventory with '([^']+)' plugin: (.*)$", re.MULTILINE
)


@dataclass(frozen=True)
class VaultOptions:
    """Ansible's own Vault options, passed to ansible-inventory as given."""

    password_files: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.password_files or self.ids)

    def argv(self) -> list[str]:
        return [f"--vault-id={i}" for i in self.ids] + [
            f"--vault-password-file={f}" for f in self.password_files
        ]


def find_ansible_inventory() -> str | None:
    """ansible-inventory from walguard's own environment (where the extra installs it), else
    from PATH; None without ansible-core."""
    beside = Path(sys.executable).parent / "ansible-inventory"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("ansible-inventory")


def ansible_inventory_argv(executable: str, source: str, vault: VaultOptions) -> list[str]:
    # --inventory=SOURCE: a source starting with '-' cannot pass for an option.
    return [executable, "--list", f"--inventory={source}", *vault.argv()]


def run_ansible_inventory(source: str, vault: VaultOptions, what: str) -> str:
    """ansible-inventory's JSON for `source` (`what` says what it is, for messages)."""
    executable = find_ansible_inventory()
    if executable is None:
        raise InventoryError(
            f"{source}: {what}: walguard reads YAML and INI inventories itself and anything "
            f"else through ansible-inventory, which is not installed; install ansible-core "
            f"with {INSTALL_HINT}"
        )
    argv = ansible_inventory_argv(executable, source, vault)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **_ENV},
            start_new_session=True,  # no terminal to prompt on; one group to stop on timeout
        )
    except OSError as exc:
        raise InventoryError(f"{source}: cannot run {executable}: {exc.strerror or exc}") from None
    with proc:
        try:
            out, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise InventoryError(
                f"{source}: ansible-inventory gave no answer within {TIMEOUT_S} s"
            ) from None
    if proc.returncode != 0:
        why = _why(err.decode("utf-8", errors="replace"), proc.returncode)
        raise InventoryError(f"{source}: ansible-inventory could not read it: {why}")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise InventoryError(f"{source}: ansible-inventory answered with non-UTF-8 bytes") from None


def _why(stderr: str, returncode: int) -> str:
    """Ansible's errors, and each plugin's reason for refusing the source, in one line."""
    parts = _ERROR.findall(stderr)
    if not parts:
        lines = [line for line in stderr.splitlines() if line.strip()]
        parts = [lines[-1] if lines else f"exit status {returncode}"]
    text = "; ".join(parts)
    refusals = [f"{plugin}: {reason}" for plugin, reason in _PLUGIN_FAILED.findall(stderr)]
    if refusals:
        text += f" (plugins tried: {'; '.join(refusals)})"
    # Ansible's own messages may quote an inventory line: a password in it is hidden.
    text = masked(" ".join(text.split()))
    return text if len(text) <= 800 else text[:797] + "..."


def targets_from_listing(listing: str, source: str) -> list[Target]:
    """The Targets of an ``ansible-inventory --list`` answer."""
    label = f"{source} (via ansible-inventory)"
    origin = Origin(label, None)
    try:
        doc = json.loads(listing)
    except ValueError as exc:
        raise InventoryError(f"{label}: the answer is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InventoryError(f"{label}: expected a JSON object of groups, got {type(doc).__name__}")
    meta = _mapping(doc.get("_meta") or {}, origin, "_meta")
    hostvars = _mapping(meta.get("hostvars") or {}, origin, "_meta.hostvars")
    inv = Builder(label, vars_dir=None)  # Ansible has merged every variable already
    groups = {name: _mapping(body or {}, origin, name) for name, body in doc.items()}
    groups.pop("_meta", None)
    for name, body in groups.items():
        parent = inv.group(name, origin, name)
        for child in _names(body.get("children"), origin, f"{name}.children"):
            inv.add_child(parent, inv.group(child, origin, f"{name}.children"), origin, name)
    # Hosts in the order of a walk from all, children in Ansible's order, as it lists hosts.
    queue, seen = ["all"], set()
    for name in groups:
        queue.append(name)  # and any group the walk would not reach
    while queue:
        name = queue.pop(0)
        if name in seen or name not in groups:
            continue
        seen.add(name)
        body = groups[name]
        queue[0:0] = _names(body.get("children"), origin, f"{name}.children")
        for host in _names(body.get("hosts"), origin, f"{name}.hosts"):
            # Checked before its name is used in any message or path (an inventory script or
            # plugin may answer with any string, ../../x included).
            check_host_name(host, f"{name}.hosts", origin)
            found = _mapping(hostvars.get(host) or {}, origin, f"_meta.hostvars.{host}")
            layer: Layer = {key: (_value(value), origin) for key, value in found.items()}
            inv.add_host(host, inv.groups[name], layer, origin, f"{name}.hosts")
    return inv.targets()


def _mapping(value: Any, origin: Origin, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        fail(origin, where, f"expected a JSON object, got {type(value).__name__}")
    return value


def _names(value: Any, origin: Origin, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        fail(origin, where, "expected a list of names")
    return value


def _value(value: Any) -> Any:
    """A variable from ansible-inventory's JSON, with its legacy markers read."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_vault"}:
            return Secret(value["__ansible_vault"], encrypted=True)
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]  # walguard never templates: a plain string
        return {key: _value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_value(item) for item in value]
    return value
