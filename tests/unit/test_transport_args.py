"""How walguard calls OpenSSH: argument lists only, walguard's security options first (ssh keeps
the first value of an option), IPv6 addresses as they are, shell metacharacters in the
inventory's ssh arguments refused before any host is touched."""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

import pytest

from walguard.inventory import InventoryError, Target, load_inventory
from walguard.policy import Connect
from walguard.transport import Connection


def _target(**changes: object) -> Target:
    base = dict(
        name="db1",
        address="10.0.0.1",
        port=2222,
        user="walguard",
        key_file="/keys/id",
        become=True,
        groups=("all",),
        vars=MappingProxyType({}),
        connect=Connect(known_hosts_file="/kh", connect_timeout_s=7),
        ssh_args=("-o", "ForwardAgent=yes", "-J", "bastion"),
    )
    base.update(changes)
    return Target(**base)  # type: ignore[arg-type]


def _value(opts: list[str], name: str) -> str:
    """The value ssh would use: the first -o NAME=value."""
    for i, opt in enumerate(opts):
        if opt == "-o" and opts[i + 1].split("=", 1)[0] == name:
            return opts[i + 1].split("=", 1)[1]
    raise KeyError(name)


def test_security_options_come_first_and_win() -> None:
    conn = Connection(_target())
    try:
        opts = conn.options()
        assert _value(opts, "ForwardAgent") == "no"  # the inventory's "yes" comes later
        assert _value(opts, "ForwardX11") == "no"
        assert _value(opts, "StrictHostKeyChecking") == "yes"
        assert _value(opts, "BatchMode") == "yes"
        assert _value(opts, "UserKnownHostsFile") == "/kh"
        assert _value(opts, "ConnectTimeout") == "7"
        assert opts[-6:] == ["-o", "ForwardAgent=yes", "-J", "bastion", "-p", "2222"]
        assert conn.master_argv()[-1] == "walguard@10.0.0.1"
        assert "ControlPersist=no" in conn.master_argv()
        assert "-f" not in conn.master_argv()
        cmd = conn.command_argv("echo 'a b'; true")
        assert cmd[-1] == "echo 'a b'; true" and "ControlMaster=no" in cmd
    finally:
        conn.close()


def test_ipv6_address_is_passed_as_it_is() -> None:
    conn = Connection(_target(address="fe80::1%wgbr0", ssh_args=()))
    try:
        assert conn.destination() == "walguard@fe80::1%wgbr0"
        assert conn.options()[-2:] == ["-p", "2222"]
    finally:
        conn.close()


def _inventory(tmp_path: Path, args: str) -> Path:
    path = tmp_path / "inv.yml"
    path.write_text(
        "all:\n  hosts:\n    db1:\n      ansible_host: 10.0.0.1\n"
        f"      ansible_ssh_common_args: {args!r}\n"
    )
    return path


@pytest.mark.parametrize(
    "args",
    [
        "-o ProxyCommand=$(touch {x})",
        "-o ProxyCommand=`touch {x}`",
        "-J bastion; touch {x}",
        "-J bastion && touch {x}",
        "-J bastion | tee {x}",
        "-J bastion > {x}",
    ],
)
def test_shell_metacharacters_in_ssh_args_are_a_usage_error(tmp_path: Path, args: str) -> None:
    x = tmp_path / "x"
    path = _inventory(tmp_path, args.format(x=x))
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    message = str(info.value)
    assert message.startswith(f"{path}:5: host db1: ansible_ssh_common_args: shell metachar")
    assert "\n" not in message
    assert not x.exists()


def test_ssh_args_are_split_like_a_shell_would(tmp_path: Path) -> None:
    path = _inventory(tmp_path, "-o 'ProxyJump=jump host' -F /etc/walguard/ssh_config")
    (target,) = load_inventory(path)
    assert target.ssh_args == ("-o", "ProxyJump=jump host", "-F", "/etc/walguard/ssh_config")


def test_ipv6_ansible_host_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text('all:\n  hosts:\n    db1:\n      ansible_host: "fe80::1"\n')
    (target,) = load_inventory(path)
    assert target.address == "fe80::1"
    conn = Connection(target)
    try:
        assert conn.destination() == "fe80::1"
    finally:
        conn.close()
