"""The SELinux guest's pure parts: its recipe, its cache key, the QEMU command line, known_hosts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from walguard.facts.tls import judge_certificate, load_ca
from walguard.lab import (
    image,
    selinux_guest,
    selinux_image,
    selinux_provision,
    selinux_settings,
    selinux_vm,
    settings,
    tls,
)
from walguard.lab.labhost import lab_key


def test_the_recipe_has_what_the_guest_needs() -> None:
    needed = {
        "linux-image-amd64",
        "udev",
        "systemd",
        "openssh-server",
        "sudo",
        "postgresql-15",
        "selinux-policy-default",
        "selinux-utils",
        "policycoreutils",
        "policycoreutils-python-utils",
        "auditd",
        # What makes it a complete lab host (WG-NET-003, WG-IDN-001).
        "nftables",
        "chrony",
    }
    assert needed <= set(image.packages(selinux_settings.RECIPE_DIR))


def test_the_guest_enforces_and_mounts_an_archive_disk() -> None:
    files = selinux_settings.RECIPE_DIR / "files"
    config = (files / "etc/selinux/config").read_text().splitlines()
    assert "SELINUX=enforcing" in config
    assert "SELINUXTYPE=default" in config
    fstab = [ln.split() for ln in (files / "etc/fstab").read_text().splitlines()]
    assert ["/dev/vdb", "/pg_archive", "ext4", "defaults", "0", "2"] in fstab
    assert "enforcing=1" in selinux_settings.KERNEL_ARGS.split()


def test_the_recipe_names_no_package_registry() -> None:
    for path in selinux_settings.RECIPE_DIR.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "debian.org" not in text, path
            assert "http://" not in text and "https://" not in text, path


def test_archive_settings_are_the_nspawn_hosts_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel in selinux_settings.SHARED_FILES:
        assert (settings.RECIPE_DIR / "files" / rel).is_file(), rel
        # The guest's own recipe must not shadow a shared file with a copy that could drift.
        assert not (selinux_settings.RECIPE_DIR / "files" / rel).exists(), rel
    shared = tmp_path / "image"
    shutil.copytree(settings.RECIPE_DIR, shared)
    monkeypatch.setattr(settings, "RECIPE_DIR", shared)
    first = selinux_image.recipe_hash()
    conf = shared / "files" / selinux_settings.SHARED_FILES[0]
    conf.write_text(conf.read_text() + "archive_timeout = 120\n")
    assert selinux_image.recipe_hash() != first  # a change to the shared settings rebuilds


def test_qemu_never_writes_the_cached_root_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path / "state")
    img = selinux_image.GuestImage(tmp_path / "img")
    argv = selinux_vm.qemu_argv(img)
    # The guest writes only its overlays in the lab's state; the image is their backing file.
    state = tmp_path / "state" / "selinux1"
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives == [
        f"file={state / 'root.qcow2'},format=qcow2,if=virtio",
        f"file={state / 'pg_archive.qcow2'},format=qcow2,if=virtio",
    ]
    assert argv[argv.index("-qmp") + 1] == f"unix:{state / 'qmp.sock'},server=on,wait=off"
    assert argv[argv.index("-accel") + 1] == "tcg"
    # One network card, on the lab bridge through its tap: no user-mode network, no forwards.
    netdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-netdev"]
    assert netdevs == ["tap,id=net0,ifname=vm-selinux1,script=no,downscript=no"]
    assert not any("hostfwd" in a or a.startswith("user") for a in argv)
    fw_cfg = [argv[i + 1].split(",")[0] for i, a in enumerate(argv) if a == "-fw_cfg"]
    assert fw_cfg == [
        "name=opt/walguard/ssh_host_ed25519_key",
        "name=opt/walguard/authorized_keys",
        "name=opt/walguard/tls_server.crt",
        "name=opt/walguard/tls_server.key",
    ]
    # The guest's unit reads exactly these names.
    script = selinux_settings.RECIPE_DIR / "files/usr/local/sbin/walguard-fw-cfg-keys"
    for name in selinux_provision.FW_CFG_FILES:
        assert f'"$base/{name}/raw"' in script.read_text(), name


def test_the_recipe_puts_the_guest_at_its_lab_address() -> None:
    address = selinux_settings.ADDRESS
    # On the hosts' subnet of the lab bridge, where no dbN will ever be.
    assert address.startswith(settings.HOST_NET_PREFIX)
    assert address not in {
        settings.host_address(h) for h in settings.host_names(settings.MAX_HOSTS)
    }
    assert address != settings.BRIDGE_ADDR
    files = selinux_settings.RECIPE_DIR / "files"
    network = (files / "etc/systemd/network/10-walguard-lab.network").read_text().splitlines()
    assert f"Address={address}/24" in network
    assert f"Gateway={settings.BRIDGE_ADDR}" in network
    assert f"Destination={settings.LAB_NET}" in network
    # Its name resolves to that address (WG-IDN-002), PostgreSQL listens there (WG-NET-001).
    assert f"{address} {selinux_settings.NAME}" in (files / "etc/hosts").read_text().splitlines()
    listen = (files / "etc/postgresql/15/main/conf.d/20-walguard-listen.conf").read_text()
    assert f"listen_addresses = 'localhost,{address}'" in listen.splitlines()
    # zone-a may log in (with a password), as on the nspawn hosts (WG-NET-004).
    setup = (selinux_settings.RECIPE_DIR / "setup.sh").read_text()
    assert f"host all all {settings.ZONES[0].subnet} scram-sha-256" in setup
    assert "nftables.service" in setup and "chrony.service" in setup


def test_the_guest_is_handed_a_certificate_from_the_lab_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path)
    selinux_provision.prepare()
    state = tmp_path / "selinux1"
    assert (state / "tls_server.key").stat().st_mode & 0o777 == 0o600
    pem = (state / "tls_server.crt").read_text()
    ca = load_ca(str(tls.ca_cert_path()))
    # What WG-IDN-003 judges, for the name clients use and for the address the probes dial.
    assert judge_certificate(pem, ca, "selinux1", 30).ok
    assert not judge_certificate(pem, ca, "db1", 30).ok
    cert = x509.load_pem_x509_certificate(pem.encode())
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in alt.get_values_for_type(x509.IPAddress)] == [selinux_settings.ADDRESS]
    assert (state / "authorized_keys").read_text() == Path(f"{lab_key()}.pub").read_text()
    host_key = (state / "ssh_host_ed25519_key.pub").read_text()
    selinux_provision.prepare()  # a second boot keeps the host key (known_hosts stays valid)
    assert (state / "ssh_host_ed25519_key.pub").read_text() == host_key


@pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
def test_overlays_leave_the_cached_image_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path / "state")
    img = selinux_image.GuestImage(tmp_path / "img")
    img.dir.mkdir()
    for disk in (img.rootfs, img.archive):
        with disk.open("wb") as f:
            f.truncate(1024 * 1024)
    (tmp_path / "state" / "selinux1").mkdir(parents=True)
    selinux_vm.make_overlays(img)
    for overlay, backing in (("root.qcow2", img.rootfs), ("pg_archive.qcow2", img.archive)):
        info = subprocess.run(
            ["qemu-img", "info", "--output=json", str(tmp_path / "state" / "selinux1" / overlay)],
            capture_output=True,
            text=True,
            check=True,
        )
        doc = json.loads(info.stdout)
        assert (doc["format"], doc["backing-filename"]) == ("qcow2", str(backing))
        assert doc["backing-filename-format"] == "raw"


def test_known_hosts_name_the_guest_and_its_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path)
    (tmp_path / "selinux1").mkdir()
    (tmp_path / "selinux1" / "ssh_host_ed25519_key.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample root@selinux1\n"
    )
    assert selinux_guest.known_hosts_lines() == [
        "selinux1,10.231.0.100 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n"
    ]


def test_a_stale_pid_file_is_not_a_running_guest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path)
    (tmp_path / "selinux1").mkdir()
    (tmp_path / "selinux1" / "qemu.pid").write_text(f"{os.getpid()}\n")  # pytest, not QEMU
    assert selinux_guest.qemu_pid() is None
    assert not selinux_guest.running()


def test_a_clock_behind_this_machines_is_not_ready() -> None:
    # What a loaded snapshot leaves until chronyd steps it: the readiness check says so.
    now = 1_800_000_000.0
    assert selinux_guest._clock_agrees(now, "1800000000.200\n", now + 0.3)
    assert not selinux_guest._clock_agrees(now, "1799999940.000\n", now + 0.3)
    assert not selinux_guest._clock_agrees(now, "1800000060.000\n", now + 0.3)
    assert not selinux_guest._clock_agrees(now, "", now + 0.3)
