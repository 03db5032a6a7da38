"""INI inventories, the ansible-inventory route and which reader a source goes to: one inventory
gives the same targets as YAML, as INI and through Ansible; INI mistakes are one-line errors."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.inventory_renderings import to_ini, write_script
from walguard.inventory import ansible as inventory_ansible
from walguard.inventory.ansible import find_ansible_inventory, targets_from_listing
from walguard.inventory.load import (
    InventoryError,
    Secret,
    Target,
    VaultOptions,
    classify,
    load_inventory,
    read_inventory,
)

ANSIBLE = find_ansible_inventory()
needs_ansible = pytest.mark.skipif(ANSIBLE is None, reason="ansible-core is not installed")


def write(root: Path, relative: str, text: str) -> Path:
    """Write dedented `text` so that its first line is line 1 of the file."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def load_error(source: Path | str, vault: VaultOptions | None = None) -> str:
    with pytest.raises(InventoryError) as info:
        load_inventory(source, vault)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


def fields(target: Target) -> tuple[Any, ...]:
    return (
        target.name,
        target.address,
        target.port,
        target.user,
        target.key_file,
        target.become,
        target.groups,
        dict(target.vars),
        target.policy,
        target.connect,
        target.ssh_args,
    )


def by_name(targets: list[Target]) -> dict[str, tuple[Any, ...]]:
    return {t.name: fields(t) for t in targets}


# --- one inventory, every way ---------------------------------------------------------------

DOC: dict[str, Any] = {
    "all": {
        "vars": {
            "ansible_user": "walguard",
            "ansible_port": 22,
            "ansible_ssh_private_key_file": "/var/lib/walguard/lab/id_ed25519",
            "ansible_become": True,
            "walguard_known_hosts_file": "/var/lib/walguard/lab/known_hosts",
            "level": "all",
        },
        "hosts": {"lone": {"note": "a # is no comment in a value", "ratio": 0.5}},
        "children": {
            "prod": {
                "vars": {"walguard_rpo_minutes": 5, "level": "prod", "empty": None},
                "children": {
                    "site_a": {
                        "hosts": {"db[01:03]": {"ansible_port": 2222}},
                        "vars": {"walguard_archive_allowed_modes": ["0750"], "level": "site_a"},
                    },
                    "site_b": {
                        "hosts": {
                            "db9": {
                                "ansible_host": "192.0.2.9",
                                "ansible_ssh_common_args": "-o ProxyJump=bastion.example",
                                "walguard_zones": {"zone-a": {"expect_postgres": True}},
                            }
                        },
                    },
                },
            },
            "staging": {
                "vars": {"ansible_group_priority": 5, "level": "staging", "x": "staging"},
                "hosts": {"db01": {"ansible_become": "no", "x": "host"}, "stg1": None},
            },
        },
    }
}
VARS_FILES = {
    "group_vars/all.yml": "walguard_connect_timeout_s: 5\nlevel: group_vars-all\n",
    "group_vars/prod.yml": "walguard_archive_dir: /srv/pg_archive\n",
    "group_vars/site_a/10-first.yml": "from_dir: 1\n",
    "host_vars/db02.yml": "ansible_host: 192.0.2.2\n",
}


def renderings(tmp_path: Path) -> dict[str, Path]:
    for relative, text in VARS_FILES.items():
        write(tmp_path, relative, text)
    yaml_path = tmp_path / "inventory.yml"
    yaml_path.write_text(yaml.safe_dump(DOC, sort_keys=False))
    ini_path = tmp_path / "hosts.ini"
    ini_path.write_text(to_ini(DOC))
    return {
        "yaml": yaml_path,
        "ini": ini_path,
        "script": write_script(DOC, tmp_path / "inventory.py"),
    }


def test_yaml_and_ini_give_the_same_targets_in_the_same_order(tmp_path: Path) -> None:
    paths = renderings(tmp_path)
    from_yaml = load_inventory(paths["yaml"])
    from_ini = load_inventory(paths["ini"])
    assert [fields(t) for t in from_ini] == [fields(t) for t in from_yaml]
    assert [t.name for t in from_yaml] == ["lone", "db01", "db02", "db03", "db9", "stg1"]
    db01 = {t.name: t for t in from_yaml}["db01"]
    # staging's priority orders it after prod's children; the host's own line wins over both.
    assert (db01.vars["level"], db01.vars["x"], db01.become) == ("group_vars-all", "host", False)
    assert "ansible_group_priority" not in db01.vars  # Ansible keeps it out of the variables
    assert db01.policy.archive_dir == "/srv/pg_archive"
    assert {t.name: t.address for t in from_ini}["db02"] == "192.0.2.2"


@needs_ansible
@pytest.mark.parametrize("way", ["yaml", "ini", "script"])
def test_ansible_inventory_gives_the_same_targets(tmp_path: Path, way: str) -> None:
    paths = renderings(tmp_path)
    ours = by_name(load_inventory(paths["yaml"]))
    listing = inventory_ansible.run_ansible_inventory(str(paths[way]), VaultOptions(), way)
    assert by_name(targets_from_listing(listing, str(paths[way]))) == ours


@needs_ansible
def test_a_script_source_goes_through_ansible_and_keeps_its_answer(tmp_path: Path) -> None:
    script = renderings(tmp_path)["script"]
    inventory = read_inventory(script)
    assert inventory.listing is not None
    assert by_name(targets_from_listing(inventory.listing, str(script))) == by_name(
        inventory.targets
    )
    assert read_inventory(tmp_path / "hosts.ini").listing is None


# --- INI semantics --------------------------------------------------------------------------


def ini(tmp_path: Path, text: str, name: str = "hosts.ini") -> Path:
    return write(tmp_path, name, text)


VALUES = """
[lab]
db1 a=22 b="'22'" c="[1, 'two']" d=True e=None f=yes g=0777 h="{'k': (1, 2)}" i='x y' j=1j
[lab:vars]
v1=22
v2 = spaced value
v3=-o ProxyJump=bastion # stays in the string
v4=True # a literal, the comment dropped
v5='quoted'
v6=
v7=a=b
v8={1}
v9=...
"""


def test_values_as_ansible_reads_them(tmp_path: Path) -> None:
    [target] = load_inventory(ini(tmp_path, VALUES))
    assert dict(target.vars) == {
        "v1": 22,
        "v2": "spaced value",
        "v3": "-o ProxyJump=bastion # stays in the string",
        "v4": True,
        "v5": "quoted",
        "v6": "",
        "v7": "a=b",
        "a": 22,
        "b": "22",
        "c": [1, "two"],
        "d": True,
        "e": None,
        "f": "yes",
        "g": "0777",
        "h": {"k": [1, 2]},
        "i": "x y",
        "j": "1j",
        "v8": [1],
        "v9": "...",
    }


@needs_ansible
def test_values_as_ansible_inventory_answers_them(tmp_path: Path) -> None:
    path = ini(tmp_path, VALUES)
    listing = inventory_ansible.run_ansible_inventory(str(path), VaultOptions(), "INI")
    assert by_name(targets_from_listing(listing, str(path))) == by_name(load_inventory(path))


def test_sections_ranges_ports_and_comments(tmp_path: Path) -> None:
    path = ini(
        tmp_path,
        """
        ; comments start with ; or #
        lone ansible_host=192.0.2.1  # and # ends a host line
        [lab]
        db[01:02]:2222
        web[a:b] ansible_port=2200
        [2001:db8::1]:2201
        2001:db8::2
        [top:children]
        lab
        later
        [later]
        [all:vars]
        ansible_user=walguard
        [lab:vars]
        walguard_rpo_minutes=5
        """,
    )
    targets = {t.name: t for t in load_inventory(path)}
    assert list(targets) == ["lone", "db01", "db02", "weba", "webb", "2001:db8::1", "2001:db8::2"]
    assert (targets["lone"].address, targets["lone"].groups) == ("192.0.2.1", ("all", "ungrouped"))
    assert (targets["db02"].port, targets["weba"].port, targets["2001:db8::1"].port) == (
        2222,
        2200,
        2201,
    )
    assert targets["db01"].groups == ("all", "lab", "top")
    assert {t.user for t in targets.values()} == {"walguard"}
    assert targets["db01"].policy.rpo_minutes == 5


def test_group_vars_and_host_vars_beside_an_ini_file(tmp_path: Path) -> None:
    path = ini(tmp_path, "[lab]\ndb1 level=host\n[lab:vars]\nlevel=lab\nother=lab\n")
    write(tmp_path, "group_vars/lab.yml", "other: group_vars\n")
    write(tmp_path, "host_vars/db1", "from_host_vars: 1\n")
    [target] = load_inventory(path)
    assert dict(target.vars) == {"level": "host", "other": "group_vars", "from_host_vars": 1}


def test_no_extension_is_ini_unless_it_opens_yaml(tmp_path: Path) -> None:
    as_ini = write(tmp_path, "a/hosts", "# INI\n[lab]\ndb1:2222\n")
    as_yaml = write(tmp_path, "b/hosts", "# YAML\nall:\n  hosts:\n    db1:\n")
    assert classify(str(as_ini)) == ("ini", as_ini, "")
    assert classify(str(as_yaml)) == ("yaml", as_yaml, "")
    assert [t.port for t in load_inventory(as_ini)] == [2222]
    assert [t.name for t in load_inventory(as_yaml)] == ["db1"]


# --- INI errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[lab]\ndb[3:1]\n", "2: [lab]: range [3:1]: expected start <= end"),
        ("[lab]\ndb[01:x]\n", "2: [lab]: range [01:x]: expected two numbers ([01:20]) or two"),
        (
            "ansible_user=walguard\n[lab]\ndb1\n",
            "1: before any [section]: 'ansible_user=walguard' is a variable where a host name "
            "was expected; set group variables in a [group:vars] section, host variables after "
            "the host name on its line",
        ),
        (
            "[lab]\ndb1\n[lab:vars]\nwalguard_rpo_minute=5\n",
            "4: host db1: walguard_rpo_minute: unknown walguard setting; did you mean "
            "walguard_rpo_minutes?",
        ),
        (
            "[lab]\ndb1 walguard_rpo_minutes=\"'5'\"\n",
            "2: host db1: walguard_rpo_minutes: expected a number > 0, got '5' (str)",
        ),
        (
            "[lab]\ndb1\n[nope:vars]\nx=1\n",
            "3: [nope:vars] sets variables of a group that is never declared; expected a [nope] "
            "or [nope:children] section too",
        ),
        (
            "[lab]\ndb1\n[top:children]\nlab\ndb2\n",
            "5: [top:children] names group 'db2', which is never declared; expected a [db2] or "
            "[db2:children] section (hosts go in a [group] section)",
        ),
        (
            "[lab:host]\ndb1\n",
            "1: [lab:host]: unknown section type 'host'; expected [lab], [lab:vars] or "
            "[lab:children]",
        ),
        (
            "[lab]\ndb1 ansible_user\n",
            "2: [lab]: expected key=value host variables after the host name, got 'ansible_user'",
        ),
        ("[lab]\ndb1 x='open\n", "2: [lab]: cannot split the host line: No closing quotation"),
        ("[lab]\ndb1\n[lab:vars]\njustakey\n", "4: [lab:vars]: expected key=value, got 'justakey'"),
        (
            "[lab] ; servers\ndb1\n",
            "1: section header: cannot read '[lab] ; servers'; expected [group], [group:vars] or "
            "[group:children] with no spaces; only # starts a comment after it",
        ),
        (
            "[lab]\ndb1\n[lab:children]\nall\n",
            "4: [lab:children]: 'all' is the root group; expected it at the top level only",
        ),
        (
            "all:\n  hosts:\n",
            "1: before any [section]: host 'all:' ends in ':'; expected host or host:port (a YAML "
            "inventory needs the extension .yml)",
        ),
        ("[lab]\ndb1 x={[1]:2}\n", "2: [lab]: x: cannot read this value (TypeError); quote it"),
        (
            "[lab]\ndb1\n[lab:vars]\nansible_group_priority=high\n",
            "4: group lab: ansible_group_priority: expected an integer, got a string ('high')",
        ),
        ("[lab]\ndb1 ansible_port=0\n", "2: host db1: ansible_port: expected a port number"),
        (
            "[lab]\ndb1 ansible_ssh_common_args='-o ProxyCommand=$(x)'\n",
            "2: host db1: ansible_ssh_common_args: shell metacharacters $ ( ) are not allowed",
        ),
    ],
)
def test_ini_mistakes_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = ini(tmp_path, text)
    assert load_error(path).startswith(f"{path}:{expected}")


def test_not_utf8_outside_comments(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_bytes(b"# caf\xe9 is fine in a comment\n[lab]\ndb\xe9\n")
    assert (
        load_error(path)
        == f"{path}:3: inventory file is not UTF-8 text (byte 0xe9); expected UTF-8"
    )


def test_no_hosts(tmp_path: Path) -> None:
    path = ini(tmp_path, "# nothing here\n[lab]\n[lab:vars]\nx=1\n")
    assert load_error(path) == (
        f"inventory {path} has no hosts: an audit of nothing is never a green run"
    )


SECRET = "S3CRET-7f3a9c"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[lab]\ndb1 ansible_host=192.0.2.1\n[lab:vars]\nwalguard_rpo_minute=5\n",
            "4: host db1: walguard_rpo_minute: unknown walguard setting",
        ),
        # An INI line quoted in the error holds a password: shown nowhere (#19).
        (
            f"[lab]\ndb1 ansible_host=192.0.2.1\nansible_become_password={SECRET}\n",
            "3: [lab]: 'ansible_become_password=<hidden>' is a variable where a host name",
        ),
    ],
)
def test_errors_stop_the_audit_before_any_host(tmp_path: Path, text: str, expected: str) -> None:
    path = ini(tmp_path, text)
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(path),
         "--report-root", str(tmp_path / "reports")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"{path}:{expected}" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert not (tmp_path / "reports").exists()


# --- which reader ---------------------------------------------------------------------------


def test_classification(tmp_path: Path) -> None:
    yml = write(tmp_path, "a/inventory.yml", "all:\n  hosts:\n    db1:\n")
    plugin = write(tmp_path, "b/aws_ec2.yml", "# cloud\nplugin: amazon.aws.aws_ec2\n")
    vaulted = write(tmp_path, "c/hosts.ini", "$ANSIBLE_VAULT;1.1;AES256\n6231\n")
    script = write(tmp_path, "d/cmdb", "#!/bin/sh\necho '{}'\n")
    script.chmod(0o755)
    plain_x = write(tmp_path, "e/hosts.ini", "[lab]\ndb1\n")
    plain_x.chmod(0o755)  # executable bit from a checkout, no #!: still INI
    toml = write(tmp_path, "f/hosts.toml", "[lab.hosts.db1]\n")
    write(tmp_path, "g/one.ini", "[lab]\ndb1\n")
    write(tmp_path, "g/README.md", "ignored\n")
    write(tmp_path, "h/one.ini", "[lab]\ndb1\n")
    write(tmp_path, "h/two.yml", "all:\n  hosts:\n    db2:\n")
    assert classify(str(yml)) == ("yaml", yml, "")
    assert classify(str(plugin))[0::2] == (
        "ansible",
        "an inventory plugin configuration (a top-level plugin: key)",
    )
    assert classify(str(vaulted))[0::2] == ("ansible", "a Vault-encrypted file")
    assert classify(str(script))[0::2] == ("ansible", "an executable inventory script")
    assert classify(str(plain_x)) == ("ini", plain_x, "")
    assert classify(str(toml))[0::2] == ("ansible", "a TOML inventory")
    assert classify(str(tmp_path / "g")) == ("ini", tmp_path / "g" / "one.ini", "")
    assert classify(str(tmp_path / "h"))[0::2] == ("ansible", "a directory of inventory sources")
    assert classify("db1,db2,")[0::2] == ("ansible", "a comma-separated host list")
    vault = VaultOptions(password_files=("pw",))
    assert classify(str(yml), vault)[0::2] == ("ansible", "Vault options were given")


@pytest.mark.parametrize(
    ("relative", "text", "what"),
    [
        ("cmdb.sh", "#!/bin/sh\necho '{}'\n", "an executable inventory script"),
        ("cloud.yml", "plugin: amazon.aws.aws_ec2\n", "an inventory plugin configuration"),
    ],
)
def test_without_ansible_core_other_sources_say_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relative: str, text: str, what: str
) -> None:
    monkeypatch.setattr(inventory_ansible, "find_ansible_inventory", lambda: None)
    path = write(tmp_path, relative, text)
    path.chmod(0o755)
    message = load_error(path)
    assert message.startswith(f"{path}: {what}")
    assert message.endswith("which is not installed; install ansible-core with pip install "
                            "'walguard[ansible]'")  # fmt: skip
    message = load_error(path, VaultOptions(ids=("prod@/pw",)))
    assert message.startswith(f"{path}: Vault options were given: ")
    assert message.endswith("pip install 'walguard[ansible]'")


def test_yaml_vault_values_point_to_the_ansible_route(tmp_path: Path) -> None:
    path = write(tmp_path, "inventory.yml", "all:\n  hosts:\n    db1:\n      p: !vault abc\n")
    assert load_error(path) == (
        f"{path}:4: p: Ansible Vault values are not supported by walguard's own reader (it never "
        "decrypts secrets); install ansible-core (pip install 'walguard[ansible]') and pass "
        "--vault-password-file FILE or --vault-id to have ansible-inventory read this inventory"
    )


# --- the ansible-inventory route, with a stand-in ---------------------------------------------


def fake_ansible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> Path:
    """A stand-in ansible-inventory that records its arguments, one per line."""
    fake = tmp_path / "bin" / "ansible-inventory"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{tmp_path}/argv"\n{body}\n')
    fake.chmod(0o755)
    monkeypatch.setattr(inventory_ansible, "find_ansible_inventory", lambda: str(fake))
    return tmp_path / "argv"


def test_ansible_inventory_gets_an_argument_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = fake_ansible(
        tmp_path, monkeypatch, """echo '{"lab": {"hosts": ["db1"]}, "_meta": {"hostvars": {}}}'"""
    )
    source = "-h $(touch pwned),x"  # a host list, as Ansible would take it
    vault = VaultOptions(password_files=("/pw file",), ids=("prod@/p",))
    [target] = load_inventory(source, vault)
    assert target.groups == ("all", "lab")
    assert argv.read_text().splitlines() == [
        "--list",
        f"--inventory={source}",
        "--vault-id=prod@/p",
        "--vault-password-file=/pw file",
    ]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "echo '[WARNING]: Failed to parse inventory with '\"'ini'\"' plugin: Expected "
            "key=value' >&2\necho '[ERROR]: Completely failed to parse inventory source x' >&2\n"
            "exit 1",
            ": ansible-inventory could not read it: Completely failed to parse inventory source x "
            "(plugins tried: ini: Expected key=value)",
        ),
        ("echo 'not json'", " (via ansible-inventory): the answer is not JSON: Expecting value"),
        ("echo '[1]'", " (via ansible-inventory): expected a JSON object of groups, got list"),
        ("echo '{}'", " (via ansible-inventory) has no hosts"),
    ],
)
def test_ansible_inventory_failures_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, expected: str
) -> None:
    fake_ansible(tmp_path, monkeypatch, body)
    assert expected in load_error("db1,")


def test_listing_markers(tmp_path: Path) -> None:
    listing = """{"ungrouped": {"hosts": ["db1"]}, "all": {"children": ["ungrouped"]},
        "_meta": {"hostvars": {"db1": {"s": {"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256"},
                                       "u": {"__ansible_unsafe": "{{ x }}"}}}}}"""
    [target] = targets_from_listing(listing, "src")
    assert target.vars["s"] == Secret("$ANSIBLE_VAULT;1.1;AES256", encrypted=True)
    assert target.vars["u"] == "{{ x }}"
    assert "ANSIBLE_VAULT" not in repr(target.vars["s"])
    assert target.groups == ("all", "ungrouped")


# --- Vault, through ansible-core ------------------------------------------------------------

INLINE_SECRET = "Inline-Vaulted-Pw-1"
FILE_SECRET = "File-Vaulted-Pw-2"


def ansible_vault(*args: str) -> str:
    tool = Path(sys.executable).parent / "ansible-vault"
    done = subprocess.run(
        [str(tool) if tool.exists() else shutil.which("ansible-vault") or "ansible-vault", *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


@needs_ansible
def test_vaulted_become_password_loads_and_never_shows(tmp_path: Path) -> None:
    password = write(tmp_path, "vault-pass", "correct horse\n")
    os.chmod(password, 0o600)
    write(
        tmp_path,
        "inventory.yml",
        "all:\n  children:\n    lab:\n      hosts:\n        db1:\n        db2:\n",
    )
    inline = ansible_vault(
        "encrypt_string", "--vault-password-file", str(password),
        "--name", "ansible_become_password", INLINE_SECRET,
    )  # fmt: skip
    write(tmp_path, "host_vars/db1.yml", f"ansible_host: 192.0.2.1\n{inline}")
    vaulted = write(
        tmp_path,
        "host_vars/db2.yml",
        f"ansible_become_password: {FILE_SECRET}\nproof: decrypted\nwalguard_rpo_minutes: 7\n",
    )
    ansible_vault("encrypt", "--vault-password-file", str(password), str(vaulted))
    assert FILE_SECRET not in vaulted.read_text()

    vault = VaultOptions(password_files=(str(password),))
    db1, db2 = load_inventory(tmp_path / "inventory.yml", vault)
    assert (db1.address, db2.vars["proof"], db2.policy.rpo_minutes) == ("192.0.2.1", "decrypted", 7)
    for target in (db1, db2):
        assert isinstance(target.vars["ansible_become_password"], Secret)
        for shown in (repr(target), str(target), repr(dict(target.vars))):
            assert INLINE_SECRET not in shown and FILE_SECRET not in shown

    # The same inventory with a mistake beside the secrets: the error names it, not them.
    write(tmp_path, "host_vars/db2/extra.yml", "walguard_rpo_minute: 5\n")
    vaulted.rename(tmp_path / "host_vars" / "db2" / "secret.yml")
    message = load_error(tmp_path / "inventory.yml", vault)
    assert "walguard_rpo_minute: unknown walguard setting" in message
    wrong = write(tmp_path, "wrong-pass", "wrong\n")
    message = load_error(tmp_path / "inventory.yml", VaultOptions(password_files=(str(wrong),)))
    assert "Decryption failed" in message
    for text in (message, load_error(tmp_path / "inventory.yml")):
        assert INLINE_SECRET not in text and FILE_SECRET not in text
