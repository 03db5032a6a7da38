"""An inventory is data from someone else: its names stay names in every reader (nothing
escapes the run directory or passes for an ssh option), its passwords appear in no message, and
a few hundred bytes of YAML aliases cannot make the load take minutes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from walguard.facts.host import HostFacts
from walguard.inventory.ansible import find_ansible_inventory, targets_from_listing
from walguard.inventory.host_copies import MAX_VALUES
from walguard.inventory.load import InventoryError, load_inventory
from walguard.report.evidence_files import write_evidence
from walguard.yaml_limit import MAX_NODES, BoundedSafeLoader

needs_ansible = pytest.mark.skipif(
    find_ansible_inventory() is None, reason="ansible-core is not installed"
)


def load_error(path: Path | str) -> str:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


# --- names ------------------------------------------------------------------------------------

BAD_NAMES = [
    ("../../../x", "a path separator"),
    ("..", "a leading dot"),
    ("-A", "a leading '-'"),
    ("db\x1bc", "a control character"),  # ESC c resets the terminal that shows the message
    ("db\x00", "a control character"),
    ("db\u202e1", "a control character"),  # right-to-left override: shows another name
    ("db\u00a01", "whitespace"),
    ("d" * 256, "more than 255 bytes"),
]


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_yaml_host_names_are_names(tmp_path: Path, name: str, why: str) -> None:
    path = tmp_path / "inventory.yml"
    path.write_text(f"all:\n  hosts:\n    {json.dumps(name)}:\n")
    assert f"{path}:3: all.hosts." in load_error(path)
    assert f"has {why}; expected a host name" in load_error(path)


@pytest.mark.parametrize(("name", "why"), [n for n in BAD_NAMES if "\x00" not in n[0]])
def test_ini_host_names_are_names(tmp_path: Path, name: str, why: str) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(f"[lab]\n{name}\n")
    message = load_error(path)
    assert message.startswith(f"{path}:2: [lab]: host name ")
    assert f"has {why}; expected a host name" in message


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_host_names_from_ansible_inventory_are_names(name: str, why: str) -> None:
    listing = json.dumps({"lab": {"hosts": [name]}, "_meta": {"hostvars": {name: {}}}})
    with pytest.raises(InventoryError) as info:
        targets_from_listing(listing, "cmdb")
    assert str(info.value).startswith("cmdb (via ansible-inventory): lab.hosts: host name ")
    assert f"has {why}; expected a host name" in str(info.value)


@pytest.mark.parametrize("group", ["../g", "-g", "g\x1b"])
def test_group_names_from_ansible_inventory_are_names(group: str) -> None:
    listing = json.dumps({group: {"hosts": ["db1"]}, "_meta": {"hostvars": {}}})
    with pytest.raises(InventoryError) as info:
        targets_from_listing(listing, "cmdb")
    assert "group name " in str(info.value) and "expected a plain name" in str(info.value)


@needs_ansible
def test_a_dynamic_inventory_cannot_name_a_host_outside_the_run(tmp_path: Path) -> None:
    """#19: a script inventory answering `../../../x` made walguard write evidence there."""
    script = tmp_path / "cmdb.py"
    listing = {"lab": {"hosts": ["../../../x"]}, "_meta": {"hostvars": {"../../../x": {}}}}
    script.write_text(f"#!{sys.executable}\nprint({json.dumps(listing)!r})\n")
    script.chmod(0o755)
    assert load_error(script) == (
        f"{script} (via ansible-inventory): lab.hosts: host name '../../../x' has a path "
        "separator; expected a host name"
    )


def test_evidence_stays_in_the_run_directory(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="is not a directory name inside"):
        write_evidence(run, HostFacts.unreachable("../escaped", "192.0.2.1", "unreachable"))
    assert not (tmp_path / "escaped").exists()
    write_evidence(run, HostFacts.unreachable("db1", "192.0.2.1", "unreachable"))
    assert (run / "evidence" / "db1").is_dir()


# --- secrets ----------------------------------------------------------------------------------

MARKER = "S3CRET-7f3a9c"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        # INI: a variable where a host name belongs, a space after '=', no '=', a section
        # header and a child group that are not what they should be.
        ("hosts.ini", f"[lab]\nansible_become_password={MARKER}\n"),
        ("hosts.ini", f"[lab]\ndb1 ansible_password= {MARKER}\n"),
        ("hosts.ini", f"[lab]\ndb1\n[lab:vars]\nansible_ssh_pass {MARKER}\n"),
        ("hosts.ini", f"[lab ansible_become_pass={MARKER}]\n"),
        ("hosts.ini", f"[lab:children]\nansible_password={MARKER} x\n"),
        # YAML: INI syntax where a mapping or a host name belongs.
        ("inventory.yml", f"all:\n  hosts:\n    db1: ansible_become_password={MARKER}\n"),
        ("inventory.yml", f"all:\n  hosts:\n    db1 ansible_password={MARKER}:\n"),
        ("inventory.yml", f"all:\n  ansible_vault_password={MARKER}:\n"),
        ("inventory.yml", f"ansible_password: {MARKER}\n"),
    ],
)
def test_passwords_appear_in_no_message(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    message = load_error(path)
    assert MARKER not in message
    assert message.startswith(str(path))


# A failing `walguard audit` prints no password either: test_inventory_ini.py,
# test_errors_stop_the_audit_before_any_host.


# --- size -------------------------------------------------------------------------------------


def laughs(levels: int) -> str:
    """The "billion laughs": each level a list of ten aliases of the level before."""
    lines = ["    l0: &l0 [lol]"]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return "all:\n  vars:\n" + "\n".join(lines) + "\n  hosts:\n    db1:\n"


def test_alias_bomb_is_refused_by_the_limit(tmp_path: Path) -> None:
    text = laughs(9)  # a billion values from 500 bytes
    path = tmp_path / "inventory.yml"
    path.write_text(text)
    # Which alias passes the limit: level 6 holds 1,111,111 values, each alias of level 5
    # 111,111; the ninth alias of level 5 is the first past 1,000,000.
    assert load_error(path) == (
        f"{path}:9: invalid YAML in inventory file: the document has more than 1,000,000 nodes "
        "once its aliases are expanded (aliases of aliases, a 'billion laughs'?); expected a "
        "smaller document"
    )
    loader = BoundedSafeLoader(text)
    with pytest.raises(yaml.MarkedYAMLError):
        loader.get_single_node()
    assert MAX_NODES < loader.expanded_nodes <= MAX_NODES + 111_111


class _Small(BoundedSafeLoader):
    max_nodes = 11


def test_aliases_count_as_what_they_stand_for() -> None:
    # The mapping, two keys, the list and its three items, and the alias' four again: 11.
    text = "a: &a [1, 2, 3]\nb: *a\n"
    assert yaml.load(text, Loader=_Small) == {"a": [1, 2, 3], "b": [1, 2, 3]}
    with pytest.raises(yaml.MarkedYAMLError, match="more than 11 nodes") as info:
        yaml.load(text + "c: 1\n", Loader=_Small)
    assert info.value.problem_mark is not None and info.value.problem_mark.line == 2


def test_values_copied_to_many_hosts_are_limited(tmp_path: Path) -> None:
    # No alias at all: one 300-item list, which each of 10,000 hosts gets a copy of.
    path = tmp_path / "inventory.yml"
    path.write_text(f"all:\n  vars:\n    big: {list(range(300))}\n  hosts:\n    db[1:10000]:\n")
    message = load_error(path)
    assert message.startswith(f"{path}:3: host db")
    assert f": big: the hosts' variables add up to more than {MAX_VALUES:,} values" in message
