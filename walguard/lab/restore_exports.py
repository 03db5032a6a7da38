"""The lab's restore host: one database host (settings.RESTORE_HOST) reads another's archive and
base backups (settings.RESTORE_SOURCE) read-only, as a bank's segregated restore system reads its
backup share, so that the drill can restore away from the host it protects.

On this machine the source's /pg_archive volume and /pg_backup directory are bound read-only under
an exports tmpfs (EXPORTS/SOURCE/...), which is a shared mount; the restore host's container gets
EXPORTS at /restore as a slave of it. A bind made or removed here at any time (the source booting,
reset, stopping) therefore appears or disappears inside the running restore host, and the source's
archive volume is never left busy in the restore host's namespace when it is unmounted and made
afresh at a reset.
"""

from __future__ import annotations

import os
from pathlib import Path

from walguard.lab import settings
from walguard.lab.proc import run
from walguard.lab.rootfs import passwd_ids

EXPORTS = settings.STATE_DIR / "exports"
# Where a bind is made read-only before it is moved under EXPORTS: a bind made under a shared mount
# is propagated at once, and a later remount read-only stays with this machine's copy (the
# restore host's copy would be writable). A private tmpfs, because a mount under a shared one
# cannot be moved.
STAGING = settings.STATE_DIR / "exports-staging"
# The source's directories, by their place on the source host.
SHARED = (settings.ARCHIVE_DIR, settings.BACKUP_DIR)


def _mounted(path: Path) -> bool:
    return run(["mountpoint", "-q", str(path)], check=False).returncode == 0


def _tmpfs(path: Path, propagation: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if not _mounted(path):
        run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "walguard-exports", str(path)])
        path.chmod(0o755)
    run(["mount", f"--make-{propagation}", str(path)])


def ensure_exports() -> Path:
    """EXPORTS as a small shared tmpfs (its own peer group: binds under it propagate)."""
    _tmpfs(EXPORTS, "shared")
    return EXPORTS


def nspawn_options(name: str) -> list[str]:
    """The restore host's extra nspawn options: the exports, read-only, at /restore."""
    if name != settings.RESTORE_HOST:
        return []
    return [f"--bind-ro={ensure_exports()}:{settings.RESTORE_MOUNT}"]


def export(name: str, merged: Path) -> None:
    """Bind the source's archive and backups (inside its mounted root `merged`) read-only."""
    if name != settings.RESTORE_SOURCE:
        return
    ensure_exports()
    uid, gid = passwd_ids(merged, "postgres")
    for place in SHARED:
        inside = merged / place.lstrip("/")
        if not inside.exists():
            # The backup directory of a fresh host is made at its first boot; made here first,
            # with the owner and mode the boot gives it, it can be bound before the boot.
            inside.mkdir(mode=0o700)
            os.chown(inside, uid, gid)
        point = EXPORTS / name / place.lstrip("/")
        point.mkdir(parents=True, exist_ok=True)
        if _mounted(point):
            continue
        _tmpfs(STAGING, "private")
        staged = STAGING / "bind"
        staged.mkdir(exist_ok=True)
        run(["mount", "--bind", str(inside), str(staged)])
        run(["mount", "-o", "remount,bind,ro", str(staged)])
        run(["mount", "--move", str(staged), str(point)])


def unexport(name: str) -> None:
    """Remove the source's binds (before its archive volume and root are unmounted)."""
    if name != settings.RESTORE_SOURCE:
        return
    for place in SHARED:
        point = EXPORTS / name / place.lstrip("/")
        if _mounted(point):
            run(["umount", str(point)])


def exports_down() -> None:
    """After every host is down: the exports tmpfs itself."""
    for path in (EXPORTS, STAGING):
        if _mounted(path):
            run(["umount", "-R", str(path)])
