"""The SELinux guest's disk image: built once per recipe by debootstrap, labelled, and cached.

The recipe is lab/selinux/ plus the files it shares with the nspawn hosts (SHARED_FILES). The
image lives under CACHE_DIR/images/selinux-HASH/:
  rootfs.ext4      the root disk, labelled at build time (QEMU opens it with snapshot=on)
  pg_archive.ext4  the pristine archive disk (plain mkfs.ext4: unlabelled, postgres 0750)
  vmlinuz, initrd.img   the guest's own kernel, booted directly
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from walguard.lab import image, settings
from walguard.lab.errors import LabError
from walguard.lab.proc import run
from walguard.lab.rootfs import passwd_ids
from walguard.lab.selinux_settings import (
    BUILD_REVISION,
    POLICY,
    RECIPE_DIR,
    ROOT_SIZE_MIB,
    SHARED_FILES,
    say,
)


@dataclass(frozen=True)
class GuestImage:
    dir: Path

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs.ext4"

    @property
    def archive(self) -> Path:
        return self.dir / "pg_archive.ext4"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"


def recipe_hash() -> str:
    digest = hashlib.sha256(f"walguard-selinux-guest {BUILD_REVISION}\0".encode())
    digest.update(image.recipe_hash(RECIPE_DIR).encode())
    for rel in SHARED_FILES:
        digest.update(f"\0{rel}\0".encode())
        digest.update((settings.RECIPE_DIR / "files" / rel).read_bytes())
    return digest.hexdigest()[:16]


def image_dir() -> Path:
    return settings.CACHE_DIR / "images" / f"selinux-{recipe_hash()}"


def _label(path: Path) -> str:
    try:
        return os.getxattr(path, "security.selinux", follow_symlinks=False).rstrip(b"\0").decode()
    except OSError:
        return ""


def _umount_under(path: Path) -> None:
    """Unmount whatever is still mounted inside a build root (deepest first), so that removing
    the root can never reach into /proc, /sys or /dev of this machine."""
    prefix = str(path.resolve()) + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        run(["umount", "-l", point], check=False)


def _in_use(path: Path) -> bool:
    """Whether a running process (a guest of this or another lab on this machine) names a file
    under `path` on its command line."""
    needle = str(path).encode() + b"/"
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False


def ensure_image(progress: bool = True) -> GuestImage:
    """Return the cached guest image, building it first if this recipe was never built here."""
    final = image_dir()
    if (final / ".walguard-image-complete").exists():
        return GuestImage(final)
    started = time.monotonic()

    def step(msg: str) -> None:
        if progress:
            say(f"selinux image: {msg} ({time.monotonic() - started:.0f} s)")

    tmp = final.with_name(final.name + ".building")
    root = tmp / "root"
    if tmp.exists():
        _umount_under(tmp)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    step(f"building {final.name} with debootstrap (first time only; a few minutes)")
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(image.packages(RECIPE_DIR))}",
            image.SUITE,
            str(root),
            image.debian_mirror(),
        ],
        timeout=1800,
    )
    step("debootstrap done; configuring")
    _configure(root)
    step("labelling every file with the policy's file contexts (setfiles)")
    _label_all(root)
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    initrds = sorted((root / "boot").glob("initrd.img-*"))
    if not kernels or not initrds:
        raise LabError("the SELinux guest image has no kernel or initrd in /boot")
    shutil.copy(kernels[-1], tmp / "vmlinuz")
    shutil.copy(initrds[-1], tmp / "initrd.img")
    step("writing the root disk (mkfs.ext4 -d keeps owners, modes and SELinux labels)")
    _write_disks(root, tmp)
    _umount_under(root)
    shutil.rmtree(root)
    (tmp / ".walguard-image-complete").write_text(recipe_hash() + "\n")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    step(f"image ready at {final}")
    for old in final.parent.glob("selinux-*"):
        # Older recipes' images, unless a running guest still boots from one.
        if old != final and not old.name.endswith(".building") and not _in_use(old):
            shutil.rmtree(old, ignore_errors=True)
    return GuestImage(final)


def _configure(root: Path) -> None:
    """The recipe's files, the shared ones, and setup.sh run inside the root."""
    run(["cp", "-a", f"{RECIPE_DIR / 'files'}/.", str(root)])
    for rel in SHARED_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(settings.RECIPE_DIR / "files" / rel, root / rel)
    shutil.copy(RECIPE_DIR / "setup.sh", root / "tmp" / "walguard-setup.sh")
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        run(["chroot", str(root), "/bin/sh", "/tmp/walguard-setup.sh"], timeout=600)
    finally:
        _umount_under(root)
    (root / "tmp" / "walguard-setup.sh").unlink()


def _label_all(root: Path) -> None:
    """Every file labelled as the policy says, so the first boot needs no relabel (and reboot)."""
    contexts = f"/etc/selinux/{POLICY}/contexts/files/file_contexts"
    run(["mount", "-t", "proc", "proc", str(root / "proc")])
    try:
        # -F: the full context (user and range too); /proc and /sys are not part of the image.
        run(
            ["chroot", str(root), "setfiles", "-F", "-e", "/proc", "-e", "/sys", contexts, "/"],
            timeout=900,
        )
    finally:
        _umount_under(root)
    postgres_label = _label(root / "usr/lib/postgresql/15/bin/postgres")
    if ":postgresql_exec_t:" not in postgres_label:
        raise LabError(
            "labelling the SELinux guest image failed: the postgres binary is labelled "
            f"{postgres_label or 'nothing'} instead of postgresql_exec_t"
        )


def _write_disks(root: Path, tmp: Path) -> None:
    """The root disk from the labelled tree, and the pristine (unlabelled) archive disk."""
    uid, gid = passwd_ids(root, "postgres")
    rootfs = tmp / "rootfs.ext4"
    size = f"{ROOT_SIZE_MIB}M"
    run(
        ["mkfs.ext4", "-q", "-F", "-L", "selinux1-root", "-d", str(root), str(rootfs), size],
        timeout=900,
    )
    # The archive disk: a bare ext4 with no labels (that is the point), owned by postgres, 0750;
    # -m 0: no root reserve, so "filesystem full" means full for postgres too.
    archive = tmp / "pg_archive.ext4"
    with archive.open("wb") as f:
        f.truncate(settings.ARCHIVE_SIZE_MIB * 1024 * 1024)
    owner = f"root_owner={uid}:{gid}"
    run(["mkfs.ext4", "-q", "-F", "-m", "0", "-L", "pg_archive", "-E", owner, str(archive)])
    run(["debugfs", "-w", "-R", "set_inode_field <2> mode 040750", str(archive)])
