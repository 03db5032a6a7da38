"""What a container host's root is made of on this machine: an overlay of the host's own layer
over the cached image, and its dedicated /pg_archive volume (a loop-mounted ext4 image)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from walguard.lab import restore_exports, settings
from walguard.lab.proc import run
from walguard.lab.rootfs import passwd_ids

if TYPE_CHECKING:
    from walguard.lab.container import Container


def is_mounted(path: Path) -> bool:
    return run(["mountpoint", "-q", str(path)], check=False).returncode == 0


def archive_mount_point(host: Container) -> Path:
    """Where the archive volume is mounted: the policy's archive directory inside the root."""
    return host.merged / settings.ARCHIVE_DIR.lstrip("/")


def mount_overlay(host: Container, image: Path, upper: Path) -> None:
    shutil.rmtree(host.dir / "work", ignore_errors=True)
    (host.dir / "work").mkdir()
    opts = f"lowerdir={image},upperdir={upper},workdir={host.dir / 'work'}"
    run(["mount", "-t", "overlay", "overlay", "-o", opts, str(host.merged)])


def make_archive_volume(host: Container) -> None:
    # Also for a host never booted (a reset is then its first boot): its directory is made here.
    host.archive_image.parent.mkdir(parents=True, exist_ok=True)
    host.archive_image.unlink(missing_ok=True)
    with host.archive_image.open("wb") as f:
        f.truncate(settings.ARCHIVE_SIZE_MIB * 1024 * 1024)
    # -m 0: no root reserve, so "filesystem full" means full for postgres too.
    run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "pg_archive", str(host.archive_image)])


def mount_archive_volume(host: Container) -> None:
    if not host.archive_image.exists():
        make_archive_volume(host)
    archive = archive_mount_point(host)
    if not is_mounted(archive):
        run(["mount", "-o", "loop", str(host.archive_image), str(archive)])
        uid, gid = passwd_ids(host.merged, "postgres")
        os.chown(archive, uid, gid)
        archive.chmod(0o750)


def unmount_all(host: Container) -> None:
    """Unmount the archive volume and the root, and detach the volume's loop device."""
    # Its binds for the restore host first: they would keep the volume busy.
    restore_exports.unexport(host.name)
    for path in (archive_mount_point(host), host.merged):
        if is_mounted(path):
            run(["umount", str(path)])
    # mount -o loop sets autoclear; detach anything left over all the same.
    listed = run(["losetup", "-j", str(host.archive_image)], check=False).stdout
    for line in listed.splitlines():
        run(["losetup", "-d", line.split(":", 1)[0]], check=False)


def any_mounted(host: Container) -> bool:
    return is_mounted(host.merged) or is_mounted(archive_mount_point(host))
