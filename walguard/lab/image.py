"""The lab hosts' base image: a Debian 12 root built once by debootstrap, cached by recipe hash.

The recipe is everything under lab/image/ (package list, chroot setup script, files). Hosts never
write to the image: each boots from its own copy-on-write overlay on top of it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
import time
from pathlib import Path

from walguard.lab import settings
from walguard.lab.errors import LabError
from walguard.lab.proc import run

SUITE = "bookworm"


def recipe_hash(recipe_dir: Path = settings.RECIPE_DIR) -> str:
    """Hash of every recipe file's path, mode and content: any change means a rebuild."""
    digest = hashlib.sha256()
    for path in sorted(p for p in recipe_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(recipe_dir).as_posix()
        # Only the executable bit: git keeps nothing else, and umasks differ between clones.
        executable = bool(path.stat().st_mode & 0o100)
        digest.update(f"{rel}\0{executable}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def image_dir() -> Path:
    return settings.CACHE_DIR / "images" / f"rootfs-{recipe_hash()}"


def debian_mirror() -> str:
    """The Debian mirror this machine's apt already uses (the lab adds no source of its own)."""
    candidates = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in candidates:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        for line in text.splitlines():
            line = line.strip()
            m = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", line + " ")
            if m:
                return m.group(1)
            m = re.match(r"URIs:\s*(\S+)", line)
            if m and "security" not in m.group(1) and "Suites: bookworm" in text:
                return m.group(1)
    raise LabError(
        "no Debian bookworm mirror found in /etc/apt/sources.list{,.d}: cannot debootstrap"
    )


def packages(recipe_dir: Path = settings.RECIPE_DIR) -> list[str]:
    lines = (recipe_dir / "packages.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def ensure_image(progress: bool = True) -> Path:
    """Return the cached image, building it first if this recipe has never been built here."""
    final = image_dir()
    if (final / ".walguard-image-complete").exists():
        return final
    started = time.monotonic()
    tmp = final.with_name(final.name + ".building")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)

    def say(msg: str) -> None:
        if progress:
            print(
                f"lab image: {msg} ({time.monotonic() - started:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    say(f"building {final.name} with debootstrap (first time only; a few minutes)")
    run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(packages())}",
            SUITE,
            str(tmp),
            debian_mirror(),
        ],
        timeout=1800,
    )
    say("debootstrap done; configuring")
    run(["cp", "-a", f"{settings.RECIPE_DIR / 'files'}/.", str(tmp)])
    shutil.copy(settings.RECIPE_DIR / "setup.sh", tmp / "tmp" / "walguard-setup.sh")
    run(["mount", "-t", "proc", "proc", str(tmp / "proc")])
    try:
        run(["chroot", str(tmp), "/bin/sh", "/tmp/walguard-setup.sh"], timeout=600)
    finally:
        run(["umount", str(tmp / "proc")], check=False)
    (tmp / "tmp" / "walguard-setup.sh").unlink()
    (tmp / ".walguard-image-complete").write_text(recipe_hash() + "\n")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    say(f"image ready at {final}")
    _prune_unused(final)
    return final


def _prune_unused(keep: Path) -> None:
    """Drop images of older recipes that no running host still uses as its lower layer."""
    mounts = Path("/proc/self/mountinfo").read_text()
    for old in keep.parent.glob("rootfs-*"):
        if old != keep and f"lowerdir={old}" not in mounts and str(old) not in mounts:
            shutil.rmtree(old, ignore_errors=True)
