"""Loading Ansible-style YAML inventories: ranges, groups, vars files, precedence, errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from walguard.inventory.load import InventoryError, Target, load_inventory
from walguard.policy.model import Policy, connect_for, policy_for

REPO = Path(__file__).resolve().parents[2]


def write(root: Path, relative: str, text: str) -> Path:
    """Write dedented `text` so that its first line is line 1 of the file."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def inventory(tmp_path: Path, text: str) -> Path:
    return write(tmp_path, "inventory.yml", text)


def load_error(path: Path) -> str:
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


def by_name(targets: list[Target]) -> dict[str, Target]:
    return {t.name: t for t in targets}


LAB = """
all:
  vars:
    ansible_user: walguard
    ansible_port: 22
    ansible_ssh_private_key_file: /var/lib/walguard/lab/id_ed25519
    ansible_become: true
    walguard_known_hosts_file: /var/lib/walguard/lab/known_hosts
  children:
    lab:
      hosts:
        db1: {ansible_host: 10.231.0.11}
        db2: {ansible_host: 10.231.0.12}
      vars:
        walguard_postgres_service: postgresql@15-main.service
        walguard_zones:
          zone-a: {expect_postgres: true}
"""


# --- loading --------------------------------------------------------------------------------


def test_lab_inventory(tmp_path: Path) -> None:
    targets = load_inventory(inventory(tmp_path, LAB))
    assert [t.name for t in targets] == ["db1", "db2"]
    db1 = targets[0]
    assert db1 == Target(
        name="db1",
        address="10.231.0.11",
        port=22,
        user="walguard",
        key_file="/var/lib/walguard/lab/id_ed25519",
        become=True,
        groups=("all", "lab"),
        vars=db1.vars,
        policy=policy_for(db1.vars, db1.name),
        connect=connect_for(db1.vars, db1.name),
    )
    assert targets[1].address == "10.231.0.12"
    assert db1.vars["walguard_zones"] == {"zone-a": {"expect_postgres": True}}
    policy = policy_for(db1.vars, host=db1.name)
    assert policy.postgres_service == "postgresql@15-main.service"
    assert db1.connect.known_hosts_file == "/var/lib/walguard/lab/known_hosts"
    assert db1.policy == policy
    assert policy.rpo_minutes == Policy().rpo_minutes


def test_example_production_inventory_loads() -> None:
    path = REPO / "examples" / "inventory" / "inventory.yml"
    targets = by_name(load_inventory(path))
    assert sorted(targets) == sorted(
        [f"db0{i}.site-a.example.internal" for i in range(1, 5)]
        + ["db01.site-b.example.internal", "db02.site-b.example.internal"]
        + ["stg-db01.site-a.example.internal"]
    )
    db01 = targets["db01.site-a.example.internal"]
    assert db01.address == "192.0.2.11"  # from host_vars/
    assert db01.vars["ansible_ssh_common_args"] == "-o ProxyJump=bastion.example.internal"
    assert db01.groups == ("all", "prod_site_a", "production", "site_a")
    assert targets["db02.site-a.example.internal"].address == "db02.site-a.example.internal"
    prod_a = policy_for(db01.vars)
    assert (prod_a.rpo_minutes, prod_a.archive_dir, prod_a.archive_min_free_percent) == (
        5,
        "/pg_archive",
        15,
    )
    assert prod_a.postgres_service == "postgresql@16-main.service"  # group_vars/production/
    assert db01.connect.pg_dsn is not None and "sslmode=verify-full" in db01.connect.pg_dsn
    assert db01.ssh_args == ("-o", "ProxyJump=bastion.example.internal")
    prod_b = policy_for(targets["db01.site-b.example.internal"].vars)
    assert (prod_b.archive_dir, prod_b.archive_min_free_percent) == ("/srv/pg_archive", 20)
    staging = targets["stg-db01.site-a.example.internal"]
    assert staging.address == "192.0.2.31"
    assert staging.groups == ("all", "site_a", "staging")
    assert policy_for(staging.vars).rpo_minutes == 60
    assert all(t.user == "walguard-audit" and t.become for t in targets.values())


def test_defaults_for_a_bare_host(tmp_path: Path) -> None:
    [target] = load_inventory(inventory(tmp_path, "all:\n  hosts:\n    db1:\n"))
    assert target == Target(
        name="db1",
        address="db1",
        port=22,
        user=None,
        key_file=None,
        become=False,
        groups=("all", "ungrouped"),
        vars={},
    )


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        ("db[01:20]", [f"db{i:02d}" for i in range(1, 21)]),
        ("web[1:3]", ["web1", "web2", "web3"]),
        ("web[8:11]", ["web8", "web9", "web10", "web11"]),
        ("node[a:c]", ["nodea", "nodeb", "nodec"]),
        ("db[1:10:2]", ["db1", "db3", "db5", "db7", "db9"]),
        ("db[01:10:3]", ["db01", "db04", "db07", "db10"]),
        ("n[a:e:2]", ["na", "nc", "ne"]),
        ("db[:2]", ["db0", "db1", "db2"]),
        ("db[001:003].example.internal", [f"db00{i}.example.internal" for i in (1, 2, 3)]),
        ("r[1:2]-[a:b]", ["r1-a", "r1-b", "r2-a", "r2-b"]),
        ("db[7:7]", ["db7"]),
    ],
)
def test_host_ranges(tmp_path: Path, pattern: str, names: list[str]) -> None:
    path = inventory(
        tmp_path,
        f"""
        all:
          hosts:
            "{pattern}":
              ansible_port: 2222
        """,
    )
    targets = load_inventory(path)
    assert [t.name for t in targets] == names
    assert {t.port for t in targets} == {2222}


def test_unquoted_range_keys_are_plain_yaml(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  hosts:\n    db[01:03].example.internal:\n")
    assert [t.name for t in load_inventory(path)] == [
        "db01.example.internal",
        "db02.example.internal",
        "db03.example.internal",
    ]


def test_nested_groups_and_order_of_first_appearance(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          hosts:
            lone:
          children:
            prod:
              children:
                prod_a:
                  hosts:
                    db2:
                    db1:
                prod_b:
                  hosts:
                    db3:
                    db1:
            site_a:
              children:
                prod_a:
              hosts:
                stg1:
                db3:
        """,
    )
    targets = load_inventory(path)
    assert [t.name for t in targets] == ["lone", "db2", "db1", "db3", "stg1"]
    groups = {t.name: t.groups for t in targets}
    assert groups["lone"] == ("all", "ungrouped")
    assert groups["db1"] == ("all", "prod", "prod_a", "prod_b", "site_a")
    assert groups["db2"] == ("all", "prod", "prod_a", "site_a")
    assert groups["db3"] == ("all", "prod", "prod_b", "site_a")
    assert groups["stg1"] == ("all", "site_a")


def test_other_top_level_groups_are_children_of_all(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          vars:
            ansible_user: audit
        extra:
          hosts:
            db9:
        """,
    )
    [target] = load_inventory(path)
    assert (target.groups, target.user) == (("all", "extra"), "audit")


def test_host_listed_under_two_groups_merges_its_vars(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          children:
            a:
              hosts:
                db1: {ansible_port: 2200, first: 1}
            b:
              hosts:
                db1: {ansible_port: 2201}
        """,
    )
    [target] = load_inventory(path)
    assert target.port == 2201
    assert target.vars["first"] == 1


@pytest.mark.parametrize(
    ("vars_yaml", "port", "become", "address", "user", "key_file"),
    [
        ("{ansible_port: '2222', ansible_become: 'yes'}", 2222, True, "db1", None, None),
        ("{ansible_become: 'False'}", 22, False, "db1", None, None),
        ("{ansible_become: 1}", 22, True, "db1", None, None),
        (
            "{ansible_ssh_host: 192.0.2.7, ansible_ssh_user: u, ansible_ssh_port: 2022,"
            " ansible_private_key_file: /k}",
            2022,
            False,
            "192.0.2.7",
            "u",
            "/k",
        ),
        (
            "{ansible_host: 192.0.2.8, ansible_ssh_host: 192.0.2.8}",
            22,
            False,
            "192.0.2.8",
            None,
            None,
        ),
        ("{ansible_host: null}", 22, False, "db1", None, None),
    ],
)
def test_connection_variables(
    tmp_path: Path,
    vars_yaml: str,
    port: int,
    become: bool,
    address: str,
    user: str | None,
    key_file: str | None,
) -> None:
    [target] = load_inventory(inventory(tmp_path, f"all:\n  hosts:\n    db1: {vars_yaml}\n"))
    assert (target.port, target.become, target.address, target.user, target.key_file) == (
        port,
        become,
        address,
        user,
        key_file,
    )


def test_ipv6_host_name(tmp_path: Path) -> None:
    [target] = load_inventory(inventory(tmp_path, 'all:\n  hosts:\n    "2001:db8::10":\n'))
    assert target.address == "2001:db8::10"


def test_vars_are_read_only_and_private_to_each_host(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          vars:
            shared: {list: [1, 2]}
          hosts:
            db1:
            db2:
        """,
    )
    db1, db2 = load_inventory(path)
    with pytest.raises(TypeError):
        db1.vars["shared"] = {}  # type: ignore[index]
    db1.vars["shared"]["list"].append(3)
    assert db2.vars["shared"] == {"list": [1, 2]}
    assert len({db1, db2}) == 2  # hashable despite the mapping


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          hosts:
            db1: &base {ansible_port: 2200, ansible_user: audit}
            db2:
              <<: *base
              ansible_port: 2201
        """,
    )
    db1, db2 = load_inventory(path)
    assert (db1.port, db2.port, db2.user) == (2200, 2201, "audit")


def test_unsafe_tag_is_a_plain_string(tmp_path: Path) -> None:
    [target] = load_inventory(
        inventory(tmp_path, "all:\n  hosts:\n    db1: {x: !unsafe '{{ y }}'}\n")
    )
    assert target.vars["x"] == "{{ y }}"


# --- group_vars/ and host_vars/ -------------------------------------------------------------

TWO_LEVELS = """
all:
  children:
    parent:
      children:
        child:
          hosts:
            db1:
"""


def test_group_vars_and_host_vars_files(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    write(tmp_path, "group_vars/all.yml", "from_all: 1\n")
    write(tmp_path, "group_vars/parent.yaml", "from_parent: 2\n")
    write(tmp_path, "group_vars/child", "from_child: 3\n")  # no extension, as Ansible allows
    write(tmp_path, "host_vars/db1.yml", "ansible_host: 192.0.2.1\n")
    write(tmp_path, "group_vars/unused.yml", "never: read\n")
    [target] = load_inventory(path)
    assert dict(target.vars) == {
        "from_all": 1,
        "from_parent": 2,
        "from_child": 3,
        "ansible_host": "192.0.2.1",
    }
    assert target.address == "192.0.2.1"


def test_vars_directories_merge_files_in_sorted_order(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    write(tmp_path, "group_vars/child/20-second.yml", "order: second\nonly_second: 2\n")
    write(tmp_path, "group_vars/child/10-first.yaml", "order: first\nonly_first: 1\n")
    write(tmp_path, "group_vars/child/30-nested/a.yml", "order: nested\n")
    write(tmp_path, "group_vars/child/.hidden.yml", "order: hidden\n")
    write(tmp_path, "group_vars/child/99-backup.yml~", "order: backup\n")
    write(tmp_path, "group_vars/child/README.md", "not: yaml vars\n")
    write(tmp_path, "host_vars/db1/a.yml", "ansible_port: 2200\n")
    write(tmp_path, "host_vars/db1/b.yml", "ansible_port: 2201\n")
    [target] = load_inventory(path)
    assert target.vars["order"] == "nested"
    assert (target.vars["only_first"], target.vars["only_second"]) == (1, 2)
    assert target.port == 2201


def test_group_vars_for_ungrouped_hosts(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  hosts:\n    db1:\n")
    write(tmp_path, "group_vars/ungrouped.yml", "walguard_rpo_minutes: 7\n")
    [target] = load_inventory(path)
    assert policy_for(target.vars).rpo_minutes == 7


# --- precedence -----------------------------------------------------------------------------

# Ansible's default order, lowest first (VARIABLE_PRECEDENCE: all_inventory, groups_inventory,
# all_plugins_inventory, groups_plugins_inventory; then host vars, then host_vars/).
LEVELS = [
    "inventory all vars",
    "inventory parent vars",
    "inventory child vars",
    "group_vars/all",
    "group_vars/parent",
    "group_vars/child",
    "inventory host vars",
    "host_vars/db1",
]


def _level_vars(level: int) -> dict[str, int]:
    # Level k sets upto_j for every j >= k: upto_j ends as j only if level j beats every level
    # below it, so together the variables prove the whole order.
    return {f"upto_{j}": level for j in range(level, len(LEVELS))}


def _flow(mapping: dict[str, int]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in mapping.items()) + "}"


def test_precedence_follows_ansible(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        f"""
        all:
          vars: {_flow(_level_vars(0))}
          children:
            parent:
              vars: {_flow(_level_vars(1))}
              children:
                child:
                  vars: {_flow(_level_vars(2))}
                  hosts:
                    db1: {_flow(_level_vars(6))}
        """,
    )
    write(tmp_path, "group_vars/all.yml", _flow(_level_vars(3)))
    write(tmp_path, "group_vars/parent.yml", _flow(_level_vars(4)))
    write(tmp_path, "group_vars/child/vars.yml", _flow(_level_vars(5)))
    write(tmp_path, "host_vars/db1.yml", _flow(_level_vars(7)))
    [target] = load_inventory(path)
    won = {LEVELS[j]: LEVELS[target.vars[f"upto_{j}"]] for j in range(len(LEVELS))}
    assert won == {level: level for level in LEVELS}
    assert target.vars["upto_0"] == 0


def test_host_vars_file_wins_over_every_other_level(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          vars: {level: inventory-all}
          children:
            parent:
              vars: {level: inventory-parent}
              children:
                child:
                  vars: {level: inventory-child}
                  hosts:
                    db1: {level: inventory-host}
        """,
    )
    for name in ("all", "parent", "child"):
        write(tmp_path, f"group_vars/{name}.yml", f"level: group_vars-{name}\n")
    write(tmp_path, "host_vars/db1.yml", "level: host_vars\n")
    [target] = load_inventory(path)
    assert target.vars["level"] == "host_vars"


def test_group_vars_all_beats_inventory_vars_of_any_group(tmp_path: Path) -> None:
    # Ansible's default, and a common surprise: a group_vars/ file outranks every group's vars
    # in the inventory file, the child's included.
    path = inventory(
        tmp_path,
        """
        all:
          vars: {x: inventory-all}
          children:
            child:
              vars: {x: inventory-child}
              hosts:
                db1:
        """,
    )
    write(tmp_path, "group_vars/all.yml", "x: group_vars-all\n")
    [target] = load_inventory(path)
    assert target.vars["x"] == "group_vars-all"


def test_child_beats_parent(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          children:
            parent:
              vars: {x: parent, y: parent}
              children:
                child:
                  vars: {x: child}
                  hosts:
                    db1:
        """,
    )
    write(tmp_path, "group_vars/parent.yml", "z: parent\n")
    write(tmp_path, "group_vars/child.yml", "z: child\n")
    [target] = load_inventory(path)
    assert (target.vars["x"], target.vars["y"], target.vars["z"]) == ("child", "parent", "child")


def test_same_depth_groups_merge_alphabetically_and_depth_beats_name(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          children:
            beta:
              vars: {same_depth: beta, by_depth: beta}
              hosts:
                db1:
            alpha:
              vars: {same_depth: alpha}
              hosts:
                db1:
            zeta:
              children:
                aaa:
                  vars: {by_depth: aaa}
                  hosts:
                    db1:
        """,
    )
    [target] = load_inventory(path)
    assert target.vars["same_depth"] == "beta"  # alpha < beta: beta merges later
    assert target.vars["by_depth"] == "aaa"  # depth 2 beats depth 1 whatever the name


def test_group_priority_reorders_groups_of_the_same_depth(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          children:
            alpha:
              vars: {x: alpha, ansible_group_priority: 10}
              hosts:
                db1:
            beta:
              vars: {x: beta}
              hosts:
                db1:
        """,
    )
    [target] = load_inventory(path)
    assert target.vars["x"] == "alpha"


def test_merge_is_shallow(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          vars:
            walguard_zones: {zone-a: {expect_postgres: true}, zone-b: {expect_postgres: false}}
          hosts:
            db1:
              walguard_zones: {zone-c: {expect_postgres: true}}
        """,
    )
    [target] = load_inventory(path)
    assert target.vars["walguard_zones"] == {"zone-c": {"expect_postgres": True}}


# --- errors ---------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nope.yml")
    assert message == f"{tmp_path / 'nope.yml'}: inventory file not found"


def test_directory_without_an_inventory_file(tmp_path: Path) -> None:
    write(tmp_path, "group_vars/all.yml", "x: 1\n")
    write(tmp_path, "README.md", "not an inventory\n")
    assert load_error(tmp_path) == (
        f"{tmp_path}: inventory directory holds no inventory file (only group_vars, host_vars "
        "and files Ansible ignores)"
    )


def test_directory_with_one_inventory_file_is_read_like_that_file(tmp_path: Path) -> None:
    inventory(tmp_path, TWO_LEVELS)
    write(tmp_path, "group_vars/child.yml", "from_child: 3\n")
    write(tmp_path, "notes.txt", "ignored, as Ansible ignores it\n")
    [target] = load_inventory(tmp_path)
    assert (target.name, target.vars["from_child"]) == ("db1", 3)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yml"
    path.write_bytes(b"all:\n  hosts:\n    db\xff:\n")
    assert f"{path}: inventory file is not UTF-8 text" in load_error(path)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          hosts:
            db1:
              ansible_host: 192.0.2.1
             ansible_port: 22
        """,
    )
    message = load_error(path)
    assert message.startswith(f"{path}:5: invalid YAML in inventory file: expected <block end>")
    assert message.endswith("; check the indentation")


def test_unclosed_flow_mapping(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  hosts:\n    db1: {ansible_host: 192.0.2.1\n")
    message = load_error(path)
    assert message.startswith(f"{path}:4: invalid YAML in inventory file: ")
    assert "flow mapping" in message


def test_unknown_tag(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  vars:\n    x: !env HOME\n  hosts:\n    db1:\n")
    message = load_error(path)
    assert message.startswith(f"{path}:3: invalid YAML in inventory file: ")
    assert "'!env'" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "got an empty file"),
        ("- db1\n- db2\n", "got a list"),
        ("just a string\n", "got a string ('just a string')"),
    ],
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str, fragment: str) -> None:
    path = inventory(tmp_path, text)
    message = load_error(path)
    assert message.startswith(f"{path}: expected an Ansible YAML inventory")
    assert fragment in message


def test_top_level_without_all(tmp_path: Path) -> None:
    path = inventory(tmp_path, "# comment\nlab:\n  hosts:\n    db1:\n")
    assert load_error(path) == f"{path}:2: top level: expected an 'all' group, found 'lab'"


def test_hosts_as_a_list(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          children:
            lab:
              hosts:
                - db1
                - db2
        """,
    )
    message = load_error(path)
    assert message.startswith(f"{path}:4: all.children.lab.hosts: ")
    assert "expected a mapping of host names to their variables, got a list" in message


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("vars: [a, b]", "all.children.lab.vars: expected a mapping of variable names"),
        ("children: [a]", "all.children.lab.children: expected a mapping of child group names"),
        ("host:\n        db1:", "all.children.lab.host: unexpected key 'host' in group 'lab'"),
    ],
)
def test_wrong_group_sections(tmp_path: Path, section: str, fragment: str) -> None:
    path = inventory(
        tmp_path,
        f"""
        all:
          children:
            lab:
              {section}
          hosts:
            db9:
        """,
    )
    message = load_error(path)
    assert message.startswith(f"{path}:4: {fragment}")


def test_group_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  children:\n    lab: db1\n")
    message = load_error(path)
    assert message.startswith(f"{path}:3: all.children.lab: expected a group")


def test_host_vars_not_a_mapping(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  hosts:\n    db1: 192.0.2.1\n")
    message = load_error(path)
    assert message == (
        f"{path}:3: all.hosts.db1: expected a mapping of variable names to values, "
        "got a string ('192.0.2.1')"
    )


@pytest.mark.parametrize(
    ("host_vars", "key", "fragment"),
    [
        ('ansible_port: "abc"', "ansible_port", "expected a port number from 1 to 65535"),
        ("ansible_port: 0", "ansible_port", "got an integer (0)"),
        ("ansible_port: true", "ansible_port", "got a boolean (true)"),
        ('ansible_become: "maybe"', "ansible_become", "expected true or false"),
        ("ansible_become: 2", "ansible_become", "expected true or false"),
        ("ansible_host: 10", "ansible_host", "expected a non-empty string, got an integer"),
        ('ansible_user: ""', "ansible_user", "expected a non-empty string"),
        ("ansible_ssh_private_key_file: [a]", "ansible_ssh_private_key_file", "got a list"),
    ],
)
def test_bad_connection_variables(tmp_path: Path, host_vars: str, key: str, fragment: str) -> None:
    path = inventory(
        tmp_path,
        f"""
        all:
          hosts:
            db1:
              note: the bad variable is on line 5
              {host_vars}
        """,
    )
    message = load_error(path)
    assert message.startswith(f"{path}:5: host db1: {key}: ")
    assert fragment in message


def test_bad_variable_in_group_vars_names_that_file(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    vars_file = write(tmp_path, "group_vars/parent.yml", "# parent\nansible_port: abc\n")
    message = load_error(path)
    assert message.startswith(f"{vars_file}:2: host db1: ansible_port: expected a port number")


def test_conflicting_alias(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          vars:
            ansible_host: 192.0.2.1
          hosts:
            db1:
              ansible_ssh_host: 192.0.2.2
        """,
    )
    message = load_error(path)
    assert message == (
        f"{path}:6: host db1: ansible_ssh_host: conflicts with ansible_host (set in {path}:3); "
        "expected only one of them"
    )


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [
        ("db[3:1]", "range [3:1]: expected start <= end"),
        ("db[c:a]", "range [c:a]: expected start <= end"),
        ("db[01:x]", "range [01:x]: expected two numbers ([01:20]) or two single letters"),
        ("db[aa:b]", "expected two numbers ([01:20]) or two single letters"),
        ("db[01:100]", "a zero-padded start expects an end of the same width"),
        ("db[1:5:0]", "expected a step that is a positive integer"),
        ("db[1:5:x]", "expected a step that is a positive integer"),
        ("db[1]", "range [1]: expected [start:end] or [start:end:step]"),
        ("db[1:2:3:4]", "expected [start:end] or [start:end:step]"),
        ("db[1:]", "expected two numbers"),
        ("db[1:2", "unbalanced [ ]"),
        ("db]1:2[", "unbalanced [ ]"),
        ("db[0:99999]", "more than 10000 hosts"),
        ("db[1:2]/x", "has a path separator"),
        ("db1:2222", "host:port is not supported; expected the port in ansible_port"),
        (".db1", "has a leading dot"),
    ],
)
def test_malformed_host_names(tmp_path: Path, pattern: str, fragment: str) -> None:
    path = inventory(tmp_path, f'all:\n  children:\n    lab:\n      hosts:\n        "{pattern}":\n')
    message = load_error(path)
    assert message.startswith(f"{path}:5: all.children.lab.hosts.{pattern}: ")
    assert fragment in message


def test_host_name_not_a_string(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  hosts:\n    1234:\n")
    assert (
        load_error(path)
        == f"{path}:3: all.hosts.1234: host name 1234: expected a string (quote it)"
    )


def test_duplicate_host_in_one_hosts_mapping(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          children:
            lab:
              hosts:
                db1:
                  ansible_host: 192.0.2.1
                db2:
                db1:
                  ansible_host: 192.0.2.9
        """,
    )
    message = load_error(path)
    assert message == (
        f"{path}:8: duplicate key 'db1' in this mapping (first at line 5); expected each key once"
    )


def test_duplicate_key_in_a_vars_file(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    vars_file = write(tmp_path, "group_vars/all.yml", "a: 1\nb: 2\na: 3\n")
    assert load_error(path).startswith(f"{vars_file}:3: duplicate key 'a'")


def test_duplicate_group(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  children:\n    lab:\n    lab:\n")
    assert load_error(path).startswith(f"{path}:4: duplicate key 'lab'")


VAULT = """
all:
  hosts:
    db1:
      ansible_become_password: !vault |
        $ANSIBLE_VAULT;1.1;AES256
        62313365396662343061393464336163383764373764613633653634306231386433626436623361
"""


def test_vault_value_in_inventory(tmp_path: Path) -> None:
    path = inventory(tmp_path, VAULT)
    message = load_error(path)
    assert message.startswith(f"{path}:4: ansible_become_password: Ansible Vault values ")
    assert "not supported by walguard" in message


def test_vault_value_in_a_list(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  vars:\n    x:\n      - !vault abc\n  hosts:\n    db1:\n")
    assert load_error(path).startswith(f"{path}:4: Ansible Vault values are not supported")


def test_vault_value_in_host_vars(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    vars_file = write(tmp_path, "host_vars/db1.yml", "ok: 1\nsecret: !vault 'x'\n")
    message = load_error(path)
    assert message.startswith(f"{vars_file}:2: secret: Ansible Vault values are not supported")


def test_vault_encrypted_vars_file(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    vars_file = write(tmp_path, "group_vars/all.yml", "$ANSIBLE_VAULT;1.1;AES256\n6231336539\n")
    message = load_error(path)
    assert message.startswith(f"{vars_file}:1: the whole file is Vault-encrypted; Ansible Vault")


@pytest.mark.parametrize(
    "text",
    [
        "all:\n",
        "all:\n  vars:\n    ansible_user: x\n",
        "all:\n  children:\n    lab:\n      hosts:\n",
        "all:\n  children:\n    lab:\n      children:\n        empty: {}\n",
    ],
)
def test_no_hosts(tmp_path: Path, text: str) -> None:
    path = inventory(tmp_path, text)
    assert load_error(path) == (
        f"inventory {path} has no hosts: an audit of nothing is never a green run"
    )


def test_children_loop(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          children:
            a:
              children:
                b:
                  children:
                    a:
                  hosts:
                    db1:
        """,
    )
    message = load_error(path)
    assert message.startswith(f"{path}: children: groups form a loop (")
    assert "a -> b -> a" in message


def test_all_as_a_child(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  children:\n    lab:\n      children:\n        all:\n")
    message = load_error(path)
    assert message.startswith(f"{path}:5: all.children.lab.children.all: 'all' is the root group")


def test_both_a_vars_file_and_a_directory(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    write(tmp_path, "group_vars/child/a.yml", "x: 1\n")
    second = write(tmp_path, "group_vars/child.yml", "x: 2\n")
    message = load_error(path)
    assert message.startswith(f"{second}: group_vars for 'child' also in ")
    assert "expected one of them" in message


def test_vars_file_not_a_mapping(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    vars_file = write(tmp_path, "host_vars/db1.yml", "- a\n- b\n")
    assert load_error(path) == (
        f"{vars_file}:1: top level: expected a mapping of variable names to values, got a list"
    )


def test_vars_file_syntax_error(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    vars_file = write(tmp_path, "group_vars/all.yml", "a: 1\nb: [\n")
    assert load_error(path).startswith(f"{vars_file}:3: invalid YAML in group_vars file: ")


def test_non_string_variable_name(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  vars:\n    1: x\n  hosts:\n    db1:\n")
    assert load_error(path) == (f"{path}:3: all.vars: variable name 1: expected a non-empty string")


def test_recursive_alias(tmp_path: Path) -> None:
    path = inventory(tmp_path, "all:\n  vars:\n    loop: &a [*a]\n  hosts:\n    db1:\n")
    message = load_error(path)
    assert message.startswith(f"{path}:3: host db1: loop: ")
    assert "recursive" in message


def test_unknown_walguard_variable_fails_at_load(tmp_path: Path) -> None:
    path = inventory(
        tmp_path,
        """
        all:
          children:
            lab:
              vars:
                walguard_rpo_minute: 5
              hosts:
                db1:
        """,
    )
    assert load_error(path) == (
        f"{path}:5: host db1: walguard_rpo_minute: unknown walguard setting; "
        "did you mean walguard_rpo_minutes?"
    )


def test_bad_walguard_value_in_host_vars_names_that_file(tmp_path: Path) -> None:
    path = inventory(tmp_path, TWO_LEVELS)
    vars_file = write(tmp_path, "host_vars/db1/policy.yml", "walguard_rpo_minutes: '15'\n")
    assert load_error(path) == (
        f"{vars_file}:1: host db1: walguard_rpo_minutes: expected a number > 0, got '15' (str)"
    )
