"""How walguard calls OpenSSH: argument lists only, walguard's security options first (ssh keeps
the first value of an option), IPv6 addresses as they are, shell metacharacters in the
inventory's ssh arguments refused before any host is touched."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from types import MappingProxyType

import pytest

from walguard.facts.transport import Connection
from walguard.inventory.load import InventoryError, Target, load_inventory
from walguard.inventory.ssh_options import EXPECTED
from walguard.policy.model import Connect


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
        f"      ansible_ssh_common_args: {json.dumps(args)}\n"
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
    path = _inventory(tmp_path, "-o 'ProxyJump jump.example' -J admin@jump2:2022 -oCompression=yes")
    (target,) = load_inventory(path)
    assert target.ssh_args == (
        "-o", "ProxyJump jump.example", "-J", "admin@jump2:2022", "-oCompression=yes",
    )  # fmt: skip


# The findings of #19 first: each undid walguard's SSH hardening or ran a command on the
# controller although no shell metacharacter was involved.
@pytest.mark.parametrize(
    ("args", "named"),
    [
        ("-A -X -o 'ProxyCommand=touch {x}'", "ssh option -A is not allowed"),
        ("-X", "ssh option -X is not allowed"),
        ("-o 'ProxyCommand=touch {x}'", "ssh option -o ProxyCommand is not allowed"),
        ("-o 'proxycommand touch {x}'", "ssh option -o proxycommand is not allowed"),
        ("-S {x}", "ssh option -S is not allowed"),
        ("-F {x}", "ssh option -F is not allowed"),
        ("-E {x}", "ssh option -E is not allowed"),
        ("-o LocalCommand=touch", "ssh option -o LocalCommand is not allowed"),
        ("-o PermitLocalCommand=yes", "ssh option -o PermitLocalCommand is not allowed"),
        ("-o KnownHostsCommand=/bin/true", "ssh option -o KnownHostsCommand is not allowed"),
        ("-o GlobalKnownHostsFile={x}", "ssh option -o GlobalKnownHostsFile is not allowed"),
        ("-o UserKnownHostsFile=/dev/null", "(set walguard_known_hosts_file instead)"),
        ("-o StrictHostKeyChecking=no", "(walguard always checks host keys strictly)"),
        ("-oForwardAgent=yes", "ssh option -o ForwardAgent is not allowed"),
        ("-o ControlPath={x}", "ssh option -o ControlPath is not allowed"),
        ("-o PKCS11Provider={x}", "ssh option -o PKCS11Provider is not allowed"),
        ("-o Include={x}", "ssh option -o Include is not allowed"),
        ("-o RemoteCommand=id", "ssh option -o RemoteCommand is not allowed"),
        ("-o LogLevel=QUIET", "ssh option -o LogLevel is not allowed"),
        ("-o Port=2200", "(set ansible_port instead)"),
        ("-o '\"ProxyCommand\" touch {x}'", "is not KEY=VALUE"),
        ("-o", "ssh option -o needs a value"),
        ("-J '-oProxyCommand=touch {x}'", "jump host '-oProxyCommand=touch"),
        ("-o ProxyJump=ok,-oProxyCommand=x", "jump host '-oProxyCommand=x' is not"),
        ("-J jump:99999", "port 99999 is not from 1 to 65535"),
        ("-o IdentityFile='a b'", "expected one word of plain characters, got 'a b'"),
        ("-o ConnectTimeout=soon", "ssh option -o ConnectTimeout: expected a number"),
        ("-Cv", "ssh option -Cv is not allowed"),
        ("bastion", "argument 'bastion' is not allowed"),
    ],
)
def test_only_allowed_ssh_options_pass(tmp_path: Path, args: str, named: str) -> None:
    x = tmp_path / "x"
    path = _inventory(tmp_path, args.format(x=x))
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    message = str(info.value)
    assert message.startswith(f"{path}:5: host db1: ansible_ssh_common_args: "), message
    assert named.format(x=x) in message
    assert "\n" not in message
    assert not x.exists()


def test_ssh_extra_args_are_read_and_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "hosts.ini"
    path.write_text(
        "[lab]\ndb1 ansible_ssh_common_args='-J jump' ansible_ssh_extra_args='-o Compression=no'\n"
        "db2 ansible_ssh_extra_args='-A'\n"
    )
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert str(info.value) == (
        f"{path}:3: host db2: ansible_ssh_extra_args: ssh option -A is not allowed; {EXPECTED}"
    )
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:2]))
    (target,) = load_inventory(path)
    assert target.ssh_args == ("-J", "jump", "-o", "Compression=no")


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("ansible_user", "-oProxyCommand=touch {x}", "expected a user name (no leading '-'"),
        ("ansible_host", "-oProxyCommand=touch${{IFS}}pwned", "has a leading '-'"),
        ("ansible_host", "db1 -A", "has whitespace"),
    ],
)
def test_user_and_address_cannot_be_options(
    tmp_path: Path, variable: str, value: str, fragment: str
) -> None:
    x = tmp_path / "x"
    path = tmp_path / "inv.yml"
    path.write_text(f"all:\n  hosts:\n    db1:\n      {variable}: {value.format(x=x)!r}\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(path)
    assert str(info.value).startswith(f"{path}:4: host db1: {variable}: ")
    assert fragment in str(info.value)


def _ssh_g(argv: list[str]) -> dict[str, list[str]]:
    """What ssh itself makes of walguard's command line: `ssh -G` prints the configuration it
    would connect with (no connection is made). -F /dev/null keeps the test runner's own
    ~/.ssh/config out of the answer."""
    assert argv[0] == "ssh" and "-F" not in argv  # walguard never replaces ~/.ssh/config
    done = subprocess.run(
        ["ssh", "-G", "-F", "/dev/null", *argv[1:]],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(" ")
        config.setdefault(key, []).append(value)
    return config


@pytest.mark.skipif(shutil.which("ssh") is None, reason="OpenSSH's client is not installed")
def test_ssh_itself_reads_walguards_command_line_as_hardened(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    text = (
        "all:\n  hosts:\n    db1:\n      ansible_host: 10.0.0.1\n      ansible_user: walguard\n"
        "      ansible_port: 2222\n      ansible_ssh_private_key_file: /keys/id\n"
        "      walguard_known_hosts_file: /kh\n"
        "      ansible_ssh_common_args: -J admin@jump.example:2022"
        " -o KexAlgorithms=curve25519-sha256 -o ServerAliveInterval=60 -oIdentityFile=/keys/extra\n"
    )
    path.write_text(text)
    (target,) = load_inventory(path)
    conn = Connection(target)
    try:
        for argv in (conn.master_argv(), conn.command_argv("id")[:-1]):
            assert argv[-2] == "--"  # nothing after it is read as an option
            config = _ssh_g(argv)
            assert config["forwardagent"] == ["no"]
            assert config["forwardx11"] == ["no"]
            assert config["stricthostkeychecking"] == ["true"]
            assert config["batchmode"] == ["yes"]
            assert config["userknownhostsfile"] == ["/kh"]
            assert config["permitlocalcommand"] == ["no"]
            assert "proxycommand" not in config and "localcommand" not in config
            assert config["proxyjump"] == ["admin@jump.example:2022"]
            assert config["kexalgorithms"] == ["curve25519-sha256"]
            assert config["serveraliveinterval"] == ["5"]  # walguard's own, given first
            assert "/keys/extra" in config["identityfile"]
            assert config["hostname"] == ["10.0.0.1"]
            assert config["user"] == ["walguard"] and config["port"] == ["2222"]
            assert config["controlpath"] == [conn.control_path]
    finally:
        conn.close()


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


def test_a_master_that_misses_the_first_sigterm_is_ended_by_the_next(tmp_path: Path) -> None:
    """OpenSSH's client can take a SIGTERM just before it sleeps in ppoll and then sleep on until
    ServerAliveInterval wakes it; the close signals it again rather than waiting that out (or
    killing it, which would not end its sessions as ssh's own exit does)."""
    ready = tmp_path / "ready"
    script = (
        "import pathlib, signal, sys, time\n"
        "seen = []\n"
        "def on_term(*_):\n"
        "    seen.append(1)\n"
        "    if len(seen) > 1: sys.exit(0)\n"  # the first one is lost, as in the race
        "signal.signal(signal.SIGTERM, on_term)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "while True: time.sleep(0.05)\n"
    )
    conn = Connection(_target())
    master = subprocess.Popen([shutil.which("python3") or "python3", "-c", script])
    conn._master = master
    try:
        for _ in range(500):  # until its handler is in place
            if ready.exists() or master.poll() is not None:
                break
            time.sleep(0.01)
        conn.close()
        assert master.returncode == 0  # its own exit on the second SIGTERM, not SIGKILL (-9)
    finally:
        if master.poll() is None:
            master.kill()
