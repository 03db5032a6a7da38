"""A command run as the SSH master's own first session, so that collecting a host's facts costs
one ssh process, not two (walguard.facts.transport.Connection.open_running).

The master runs the command, then keeps its session open by reading its stdin (which only
walguard holds) so that the connection stays up for what follows over it (the PostgreSQL
socket forward, more commands) until walguard ends it. Where the command's output ends is
marked on both streams with a marker of this run's own (random) making, followed on stdout by
its exit status; ssh's own messages go to the master's log file (`ssh -E`), never into the
command's streams. The command's stdin is /dev/null, as for a command of its own.
"""

from __future__ import annotations

import math
import os
import secrets
import selectors
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Marked:
    rc: int
    stdout: bytes
    stderr: bytes
    # When the connection was seen up (time.monotonic()), for the attempt's record.
    connected_at: float | None = field(default=None, compare=False)


def new_marker() -> str:
    return f"@@WG-END-{secrets.token_hex(8)}@@"


def wrap(remote_command: str, *, marker: str, become: bool, timeout_s: int, then: str = "") -> str:
    """The master's remote command line: the command under `timeout` (and `sudo -n`), then
    `then` as the login user (its output follows the command's; the exit status marked is the
    command's), its end and exit status marked, then the session held open until walguard
    closes it."""
    sudo = "sudo -n " if become else ""
    # A subshell: whatever `then` does (even exit), the marker still follows it.
    after = f"( {then} ) </dev/null; " if then else ""
    inner = (
        # The command writes its output a little at a time, and every piece would cost walguard
        # a wake-up (a hundred per host, half of what reading a host costs the controller):
        # `dd` holds it in blocks of a megabyte (GNU dd's iflag=fullblock; `cat` where there is
        # none), so it arrives in one piece or a few.
        "if dd if=/dev/null of=/dev/null iflag=fullblock 2>/dev/null; "
        "then hold() { dd bs=1048576 iflag=fullblock 2>/dev/null; }; else hold() { cat; }; fi; "
        f"{{ timeout {timeout_s} {sudo}{remote_command} </dev/null; rc=$?; {after}"
        f"printf '\\n%s %d\\n' {marker} $rc; }} | hold; "
        f"printf '%s\\n' {marker} >&2; exec cat >/dev/null"
    )
    # One argument for whatever login shell the account has: /bin/sh reads the rest.
    return f"/bin/sh -c {shlex.quote(inner)}"


def parse(out: bytes, err: bytes, marker: str) -> Marked | None:
    """The command's exit status and streams, once both markers have arrived; else None."""
    # Plain byte tests: a pattern made from each host's marker would be compiled for each host.
    m = marker.encode()
    at = out.rfind(b"\n" + m + b" ")
    if at < 0 or not err.endswith(m + b"\n"):
        return None
    status = out[at + len(m) + 2 :]
    if not (status.endswith(b"\n") and status[:-1].isdigit() and status[:-1].isascii()):
        return None
    return Marked(int(status[:-1]), out[:at], err[: -len(m) - 1])


class NoAnswer(Exception):
    """The command's end did not arrive: the deadline passed (`timed_out`) or the master
    ended first; `connected` says whether the connection had been seen up."""

    def __init__(self, timed_out: bool, connected_at: float | None, stderr: bytes = b"") -> None:
        super().__init__("timed out" if timed_out else "the master ended")
        self.timed_out = timed_out
        self.connected_at = connected_at  # None: the connection was never seen up
        # What came on the master's stderr: before a connection, a ProxyJump's ssh's own words.
        self.stderr = stderr

    @property
    def connected(self) -> bool:
        return self.connected_at is not None


# How often, while the connection is not yet seen up, `read` asks whether it is: the command's
# output comes only at its end (held in blocks), so until then this is how a connection that
# never comes is told from a command that takes its time.
_CONNECT_POLL_S = 0.1


def read(
    master: subprocess.Popen[bytes],
    marker: str,
    deadline: float,
    interrupted: Callable[[], bool] = lambda: False,
    *,
    connected: Callable[[], bool] = lambda: True,
    connect_by: float = math.inf,
) -> Marked:
    """Read the master's stdout and stderr until both markers have arrived (NoAnswer if the
    deadline passes, the master ends or the run is interrupted before). Until `connected()`
    says the connection is up (or the command's output arrives on stdout: stderr is not
    enough, a ProxyJump's ssh writes its errors there before any connection) it is asked at
    every wake-up, and a
    connection not up by `connect_by` is NoAnswer(timed_out=True, connected_at=None): no polling
    loop of its own, which cost the controller a wake-up every 20 ms of every host's
    connection."""
    assert master.stdout is not None and master.stderr is not None
    got = {master.stdout.fileno(): bytearray(), master.stderr.fileno(): bytearray()}
    out, err = got.values()
    tail = marker.encode() + b"\n"
    up_at = time.monotonic() if connected() else None
    with selectors.DefaultSelector() as sel:
        for fd in got:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            now = time.monotonic()
            left = deadline - now
            if left <= 0 or interrupted():
                raise NoAnswer(timed_out=left <= 0, connected_at=up_at, stderr=bytes(err))
            wait = min(left, 0.5) if up_at is not None else min(left, _CONNECT_POLL_S)
            ready = sel.select(wait)
            for key, _ in ready:
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    sel.unregister(key.fd)
                    continue
                got[key.fd] += chunk
                if up_at is None and key.fd == master.stdout.fileno():
                    up_at = time.monotonic()
                if out.endswith(b"\n") and err.endswith(tail):
                    found = parse(bytes(out), bytes(err), marker)
                    if found is not None:
                        return Marked(found.rc, found.stdout, found.stderr, up_at)
            if up_at is None:
                if connected():
                    up_at = time.monotonic()
                elif time.monotonic() >= connect_by:
                    raise NoAnswer(timed_out=True, connected_at=None, stderr=bytes(err))
    raise NoAnswer(timed_out=False, connected_at=up_at, stderr=bytes(err))
