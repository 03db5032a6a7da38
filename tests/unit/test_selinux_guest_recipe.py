"""The SELinux guest's pure parts: its recipe, its cache key, the QEMU command line, known_hosts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from walguard.lab import image, selinux_guest, settings


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
    }
    assert needed <= set(image.packages(selinux_guest.RECIPE_DIR))


def test_the_guest_enforces_and_mounts_an_archive_disk() -> None:
    files = selinux_guest.RECIPE_DIR / "files"
    config = (files / "etc/selinux/config").read_text().splitlines()
    assert "SELINUX=enforcing" in config
    assert "SELINUXTYPE=default" in config
    fstab = [ln.split() for ln in (files / "etc/fstab").read_text().splitlines()]
    assert ["/dev/vdb", "/pg_archive", "ext4", "defaults", "0", "2"] in fstab
    assert "enforcing=1" in selinux_guest.KERNEL_ARGS.split()


def test_the_recipe_names_no_package_registry() -> None:
    for path in selinux_guest.RECIPE_DIR.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "debian.org" not in text, path
            assert "http://" not in text and "https://" not in text, path


def test_archive_settings_are_the_nspawn_hosts_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for rel in selinux_guest.SHARED_FILES:
        assert (settings.RECIPE_DIR / "files" / rel).is_file(), rel
    shared = tmp_path / "image"
    shutil.copytree(settings.RECIPE_DIR, shared)
    monkeypatch.setattr(settings, "RECIPE_DIR", shared)
    first = selinux_guest.recipe_hash()
    conf = shared / "files" / selinux_guest.SHARED_FILES[0]
    conf.write_text(conf.read_text() + "archive_timeout = 120\n")
    assert selinux_guest.recipe_hash() != first  # a change to the shared settings rebuilds


def test_qemu_never_writes_the_cached_root_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path / "state")
    img = selinux_guest.GuestImage(tmp_path / "img")
    argv = selinux_guest.qemu_argv(img)
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives == [
        f"file={img.rootfs},format=raw,if=virtio,snapshot=on",
        f"file={tmp_path / 'state' / 'selinux1' / 'pg_archive.img'},format=raw,if=virtio",
    ]
    assert argv[argv.index("-accel") + 1] == "tcg"
    netdev = argv[argv.index("-netdev") + 1]
    assert "restrict=on" in netdev.split(",")
    assert "hostfwd=tcp:127.0.0.1:2222-:22" in netdev.split(",")
    fw_cfg = [argv[i + 1].split(",")[0] for i, a in enumerate(argv) if a == "-fw_cfg"]
    assert fw_cfg == [
        "name=opt/walguard/ssh_host_ed25519_key",
        "name=opt/walguard/authorized_keys",
    ]


def test_known_hosts_name_the_guest_and_its_forward(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path)
    (tmp_path / "selinux1").mkdir()
    (tmp_path / "selinux1" / "ssh_host_ed25519_key.pub").write_text(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample root@selinux1\n"
    )
    assert selinux_guest.known_hosts_lines() == [
        "selinux1,[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample\n"
    ]


def test_a_stale_pid_file_is_not_a_running_guest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path)
    (tmp_path / "selinux1").mkdir()
    (tmp_path / "selinux1" / "qemu.pid").write_text(f"{os.getpid()}\n")  # pytest, not QEMU
    assert selinux_guest.qemu_pid() is None
    assert not selinux_guest.running()
