"""The host's remediation lock: one walguard run at a time remediates and verifies a host.

A lock holder on the host keeps `/run/walguard/remediation.lock` (in a root-only directory) from
the first script to the end of the re-check, for as long as its stdin stays open over the SSH
connection: a run that dies releases it with its connection.
"""

from __future__ import annotations

import shlex
import subprocess

from walguard.errors import FactUnavailable
from walguard.facts.transport import Connection, read_line

# /run belongs to root, so nobody else can create (and squat) this directory; the lock holder
# refuses one that is not root's own 0700.
LOCK_DIR = "/run/walguard"
LOCK_FILE = f"{LOCK_DIR}/remediation.lock"
LOCK_BUSY = 75
LOCK_BAD_DIR = 76


def lock_holder_command() -> str:
    """Takes the host's remediation lock and holds it while its stdin stays open."""
    d, f = shlex.quote(LOCK_DIR), shlex.quote(LOCK_FILE)
    inner = (
        f"umask 077; mkdir -p {d} || exit {LOCK_BAD_DIR}; "
        f'[ "$(stat -c %u:%a {d})" = 0:700 ] || '
        f'{{ echo "BADDIR $(stat -c %U:%a {d})"; exit {LOCK_BAD_DIR}; }}; '
        f"exec flock -n -E {LOCK_BUSY} {f} sh -c 'echo LOCKED; exec cat >/dev/null'"
    )
    return f"sh -c {shlex.quote(inner)}"


class HostLock:
    """The host's remediation lock, held over the connection from `acquire` to `release`."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.proc: subprocess.Popen[bytes] | None = None

    def acquire(self) -> None:
        self.proc = self.conn.start(lock_holder_command(), become=True)
        line = read_line(self.proc.stdout)
        if line == "LOCKED":
            return
        rc = self.proc.wait(timeout=30)
        err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
        self.proc = None
        if rc == LOCK_BUSY:
            raise FactUnavailable("another walguard run is remediating this host (lock held)")
        if line.startswith("BADDIR"):
            raise FactUnavailable(
                f"{LOCK_DIR} is not root's own 0700 directory ({line.split(' ', 1)[-1]}): "
                "refusing to take a lock another user could hold"
            )
        raise FactUnavailable(f"cannot take the remediation lock: {err or line or f'exit {rc}'}")

    def release(self) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
