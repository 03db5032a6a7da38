"""SSH to one host with OpenSSH: one master connection, every command multiplexed over it.

- Strict host-key checking always, against the inventory's known_hosts file when it names one,
  else the user's own; a new key is never accepted. Agent and X11 forwarding are off, whatever
  `~/.ssh/config` says, because remediation runs as root on the far side.
- `~/.ssh/config` is otherwise honoured (ProxyJump bastions and the like), and the inventory's
  ssh arguments arrive as an argument list of allowed options only
  (`walguard.inventory.ssh_options`):
  nothing here goes through a shell on the controller.
- The master is our own child process (`ssh -N`, no `-f`, no ControlPersist). With either, ssh
  forks, and the foreground half reconnects to the new master as a multiplexing client before
  returning; when that second handshake fails (seen on a busy machine) ssh exits with "Failed to
  connect to new control master" although the master is up. Started this way there is no second
  handshake: the master is ready once its control socket appears. A master that runs the
  collector as its first session is not polled for it: the collector's output is read from the
  start, and the socket is looked for only at the reader's own wake-ups.
- Establishing the master is retried with backoff (`walguard_ssh_retries`); commands never are.
- Each ssh process costs the controller CPU (a client's start-up; the master's key exchange): a
  forward planned before `open()` is set up by the master itself, and `close()` ends the master
  with a signal, so that collecting a host's facts starts two ssh processes, not four.
- Remote output is bytes: decoded with replacement for parsing, kept raw for the evidence.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from walguard.errors import FactUnavailable
from walguard.facts import first_session, ssh_words
from walguard.inventory.load import Target

# ssh's reasons that another attempt cannot change: retrying them only delays the ERROR.
_PERMANENT = (
    "Host key verification failed",
    "REMOTE HOST IDENTIFICATION HAS CHANGED",
    "Permission denied",
    "No such file or directory",
    "Could not resolve hostname",
    "Bad configuration option",
    "command-line line",
    "the run was interrupted",
)
_POLL_S = 0.02
# How long a master has to end after a SIGTERM before it is sent another (see _stop_master).
_TERM_AGAIN_S = 0.2
# How much longer than the remote `timeout` the local side waits before giving up on ssh.
_MARGIN_S = 15


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    # sudo's last line is its reason ("a password is required").
    return lines[-1] if lines else "no output"


@dataclass(frozen=True)
class Reply:
    rc: int
    stdout: str
    stderr: str
    raw_stdout: bytes


@dataclass(frozen=True)
class Attempt:
    number: int
    ok: bool
    seconds: float
    reason: str = ""
    # Every line ssh (and a ProxyJump's ssh) wrote for a failed attempt: its own words.
    said: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "ok": self.ok,
            "seconds": self.seconds,
            "reason": self.reason,
            "ssh_said": list(self.said),
        }


class Cancel:
    """Ends a group of connections at once (an interrupted run): their masters are stopped, so
    the commands running over them fail at once, and no further master is started."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._live: set[Connection] = set()
        self._lock = threading.Lock()

    def is_set(self) -> bool:
        return self._event.is_set()

    def add(self, conn: Connection) -> None:
        with self._lock:
            self._live.add(conn)

    def discard(self, conn: Connection) -> None:
        with self._lock:
            self._live.discard(conn)

    def __call__(self) -> None:
        self._event.set()
        with self._lock:
            live = list(self._live)
        for conn in live:
            conn.signal_master()


class Connection:
    """One host's SSH master connection; counts every round trip made for facts."""

    def __init__(self, target: Target, cancel: Cancel | None = None) -> None:
        self.target = target
        self.cancel = cancel
        self.settings = target.connect
        self.round_trips = 0
        self.attempts: list[Attempt] = []
        self._dir = Path(tempfile.mkdtemp(prefix="wg-"))
        self.control_path = str(self._dir / "ctl")
        self._master: subprocess.Popen[bytes] | None = None
        # Unix-socket forwards the master sets up when it starts: local path -> remote socket.
        self._forwards: dict[str, str] = {}
        # The master's own first session (open_running): its wrapped command line.
        self._first: str | None = None
        # What ssh wrote for the attempt being made (its log, and its stderr before connecting).
        self._said = ""

    # -- the command lines --

    def options(self) -> list[str]:
        """Options for every ssh invocation. ssh keeps the first value it is given for an option,
        so walguard's security settings come before the inventory's arguments and win."""
        s = self.settings
        opts = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "ForwardAgent=no",
            "-o", "ForwardX11=no",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
            "-o", f"ConnectTimeout={s.connect_timeout_s}",
            "-o", f"ControlPath={self.control_path}",
        ]  # fmt: skip
        if s.known_hosts_file:
            opts += ["-o", f"UserKnownHostsFile={s.known_hosts_file}"]
        if self.target.key_file:
            opts += ["-o", "IdentitiesOnly=yes", "-i", self.target.key_file]
        opts += list(self.target.ssh_args)
        opts += ["-p", str(self.target.port)]
        return opts

    def destination(self) -> str:
        # user@address, never address:port: an IPv6 address is passed as it is. It follows
        # "--" on every command line: whatever it holds, ssh reads no option from it (nor from
        # the remote command after it, which ssh would otherwise scan for options too).
        user = f"{self.target.user}@" if self.target.user else ""
        return f"{user}{self.target.address}"

    def master_argv(self) -> list[str]:
        forwards = [
            a for local, remote in self._forwards.items() for a in ("-L", f"{local}:{remote}")
        ]
        if self._first is not None:
            # ssh's own messages to the log, the command's streams to walguard (open_running).
            return ["ssh", "-E", str(self._dir / "master.log"), "-o", "ControlMaster=yes",
                    "-o", "ControlPersist=no", *self.options(), *forwards, "--",
                    self.destination(), self._first]  # fmt: skip
        return ["ssh", "-N", "-o", "ControlMaster=yes", "-o", "ControlPersist=no",
                *self.options(), *forwards, "--", self.destination()]  # fmt: skip

    def command_argv(self, remote_command: str) -> list[str]:
        # ControlMaster=no: a command never opens a connection of its own.
        return ["ssh", "-o", "ControlMaster=no", *self.options(), "--", self.destination(),
                remote_command]  # fmt: skip

    # -- the master --

    def open(self) -> None:
        """Establish the master connection, retrying a failed attempt with backoff."""
        self._connect(lambda: (self._wait_master(), time.monotonic()))

    def _connect(self, attempt: Callable[[], tuple[str | None, float]]) -> None:
        """Attempts to connect, each started here: `attempt()` says None when the master is up,
        else ssh's reason, and when it knew. Retried with backoff unless the reason is one
        another attempt cannot change."""
        tries = self.settings.ssh_retries + 1
        if self.cancel is not None:
            self.cancel.add(self)
        for number in range(1, tries + 1):
            if self.cancel is not None and self.cancel.is_set():
                raise FactUnavailable("ssh: not connected: the run was interrupted")
            started = time.monotonic()
            self._said = ""
            self._spawn_master()
            reason, known_at = attempt()
            elapsed = round(known_at - started, 3)
            said = () if reason is None else tuple(ssh_words.lines(self._said))
            self.attempts.append(Attempt(number, reason is None, elapsed, reason or "", said))
            if reason is None:
                return
            # Judged on every line ssh wrote: its reason may stand on any of them.
            if number == tries or any(p in reason or p in self._said for p in _PERMANENT):
                detail = f" (after {number} attempts)" if number > 1 else ""
                raise FactUnavailable(f"ssh: {reason}{detail}")
            time.sleep(min(0.5 * 2 ** (number - 1), 4.0))

    def open_running(
        self,
        remote_command: str,
        *,
        become: bool = False,
        timeout_s: int | None = None,
        then: str = "",
    ) -> Reply:
        """open(), with the master running `remote_command` as its own first session: one ssh
        process where open() and run_raw() take two (walguard.facts.first_session). The master
        stays up afterwards, as after open(); the command is one round trip and its failures
        raise FactUnavailable as run_raw's do. `then` as for run_raw.

        Nothing polls for the connection: the command's output is read as soon as the master
        starts, and whether the master is up is asked only at the reader's own wake-ups. An
        attempt that ends before the connection was seen up is retried as open()'s are; once
        it was up, the command may have run and is never run again."""
        timeout = timeout_s or self.settings.command_timeout_s
        marker = first_session.new_marker()
        self._first = first_session.wrap(
            remote_command, marker=marker, become=become, timeout_s=timeout, then=then
        )
        interrupted = self.cancel.is_set if self.cancel is not None else lambda: False
        socket = Path(self.control_path)
        # What the attempt that connected read: its output, or why it did not end.
        outcome: list[first_session.Marked | first_session.NoAnswer] = []

        def attempt() -> tuple[str | None, float]:
            assert self._master is not None
            connect_by = time.monotonic() + self.settings.connect_timeout_s + 10
            try:
                found = first_session.read(
                    self._master, marker, connect_by + timeout + _MARGIN_S, interrupted,
                    connected=socket.exists, connect_by=connect_by,
                )  # fmt: skip
            except first_session.NoAnswer as exc:
                if exc.connected:
                    outcome.append(exc)
                    return None, exc.connected_at or time.monotonic()
                self._stop_master()
                if interrupted():
                    return "the run was interrupted", time.monotonic()
                self._said = exc.stderr.decode(errors="replace") + self._master_log()
                if exc.timed_out:
                    limit = self.settings.connect_timeout_s + 10
                    return f"no connection within {limit} s", time.monotonic()
                return ssh_words.telling(self._said), time.monotonic()
            outcome.append(found)
            return None, found.connected_at or time.monotonic()

        try:
            self._connect(attempt)
        finally:
            # The command ran once: a later open() on this connection starts a plain master.
            self._first = None
        self.round_trips += 1
        found = outcome[0]
        if isinstance(found, first_session.NoAnswer):
            if interrupted():
                raise FactUnavailable("ssh: the run was interrupted")
            if found.timed_out:
                raise FactUnavailable(f"ssh: no answer within {timeout + _MARGIN_S} s")
            self._require_master()  # the master's own reason for ending
            raise FactUnavailable("ssh: the command's output ended early")
        # The master listens for multiplexed commands before it opens its first session, so
        # its control socket is there by now; the wait covers anything slower.
        reason = self._wait_master()
        if reason is not None:
            raise FactUnavailable(f"ssh: {reason}")
        return self._reply(found.rc, found.stdout, found.stderr, timeout, become)

    def _spawn_master(self) -> None:
        self._stop_master()
        log_path = self._dir / "master.log"
        with log_path.open("wb") as log:
            # Our stdout and stderr are never the master's: it would hold a caller's pipes open.
            # A master with a first session gives its streams to walguard (ssh -E: its own
            # messages still go to the log).
            first = self._first is not None
            self._master = subprocess.Popen(
                self.master_argv(),
                stdin=subprocess.PIPE if first else subprocess.DEVNULL,
                stdout=subprocess.PIPE if first else subprocess.DEVNULL,
                stderr=subprocess.PIPE if first else log,
                start_new_session=True,
            )

    def _master_log(self) -> str:
        log = self._dir / "master.log"
        return log.read_bytes().decode(errors="replace") if log.is_file() else ""

    def _wait_master(self) -> str | None:
        """None when the master's control socket is up, else ssh's reason."""
        assert self._master is not None
        deadline = time.monotonic() + self.settings.connect_timeout_s + 10
        socket = Path(self.control_path)
        while time.monotonic() < deadline:
            if socket.exists():
                return None
            if self.cancel is not None and self.cancel.is_set():
                self._stop_master()
                return "the run was interrupted"
            if self._master.poll() is not None:
                self._said = self._master_log()
                return ssh_words.telling(self._said)
            time.sleep(_POLL_S)
        self._stop_master()
        self._said = self._master_log()
        return f"no connection within {self.settings.connect_timeout_s + 10} s"

    def _require_master(self) -> None:
        """A command must go over the master: when the master is gone, ssh would quietly open a
        connection of its own, and the master's own reason for ending would be lost."""
        if self._master is None:
            raise FactUnavailable("ssh: no master connection (open() was not called)")
        if self._master.poll() is not None:
            said = ssh_words.telling(self._master_log())
            raise FactUnavailable(f"ssh: the master connection ended: {said}")

    def signal_master(self) -> None:
        """SIGTERM to the master, from any thread; the connection's own thread reaps it."""
        master = self._master
        if master is not None and master.returncode is None:
            master.terminate()

    def _stop_master(self) -> None:
        if self._master is None:
            return
        for stream in (self._master.stdin, self._master.stdout, self._master.stderr):
            if stream is not None:
                stream.close()
        # One SIGTERM is not always enough: OpenSSH 9.2's client can take it just before it
        # sleeps in ppoll, and then notices it only when ServerAliveInterval wakes it (up to 5 s
        # on every run's close, measured on the lab). The signal again wakes it at once.
        deadline = time.monotonic() + 10
        while self._master.poll() is None and time.monotonic() < deadline:
            self._master.terminate()
            try:
                self._master.wait(timeout=_TERM_AGAIN_S)
            except subprocess.TimeoutExpired:
                continue
        if self._master.poll() is None:
            self._master.kill()
            self._master.wait()
        self._master = None

    # -- commands --

    def run_raw(
        self,
        remote_command: str,
        *,
        become: bool = False,
        timeout_s: int | None = None,
        then: str = "",
    ) -> Reply:
        """Run one command (one round trip); ERROR-worthy failures raise FactUnavailable.
        `then` (a shell command line, bounded by its caller) runs right after it in the same
        round trip as the login user, never under sudo: its output follows the command's, and
        the exit status is still the command's."""
        timeout = timeout_s or self.settings.command_timeout_s
        wrapped = f"timeout {timeout} {'sudo -n ' if become else ''}{remote_command}"
        if then:
            # One argument for whatever login shell the account has: /bin/sh reads the rest.
            wrapped = "/bin/sh -c " + shlex.quote(
                f"{wrapped} </dev/null; rc=$?; ( {then} ) </dev/null; exit $rc"
            )
        self._require_master()
        self.round_trips += 1
        try:
            done = subprocess.run(
                self.command_argv(wrapped),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout + _MARGIN_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise FactUnavailable(f"ssh: no answer within {timeout + _MARGIN_S} s") from None
        if done.returncode == 255:
            raise FactUnavailable(f"ssh: {ssh_words.telling(done.stderr.decode(errors='replace'))}")
        return self._reply(done.returncode, done.stdout, done.stderr, timeout, become)

    @staticmethod
    def _reply(rc: int, stdout: bytes, stderr: bytes, timeout: int, become: bool) -> Reply:
        err = stderr.decode(errors="replace")
        if rc == 124:
            raise FactUnavailable(f"remote command timed out after {timeout} s")
        if become and rc == 1 and "sudo:" in err:
            raise FactUnavailable(f"sudo refused: {_one_line(err)}")
        return Reply(rc, stdout.decode(errors="replace"), err, stdout)

    def run(
        self, remote_command: str, *, become: bool = False, timeout_s: int | None = None
    ) -> tuple[int, str, str]:
        reply = self.run_raw(remote_command, become=become, timeout_s=timeout_s)
        return reply.rc, reply.stdout, reply.stderr

    def start(self, remote_command: str, *, become: bool = False) -> subprocess.Popen[bytes]:
        """A long-running command over the master (e.g. one that holds a lock while its stdin is
        open); the caller reads its stdout and closes its stdin to end it."""
        prefix = "sudo -n " if become else ""
        self._require_master()
        return subprocess.Popen(
            self.command_argv(f"{prefix}{remote_command}"),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def plan_forward(self, remote_socket: str, local_name: str) -> None:
        """Before `open()`: the master forwards this remote unix socket from the start, so that
        `forward_unix_socket` later costs no ssh process of its own."""
        local_dir = self._dir / "pg"
        local_dir.mkdir(exist_ok=True)
        self._forwards[str(local_dir / local_name)] = remote_socket

    def forward_unix_socket(self, remote_socket: str, local_name: str) -> str:
        """Forward a remote unix socket over the existing master connection; returns the
        local socket's directory (a new round trip is counted by whoever uses it)."""
        self._require_master()
        local_dir = self._dir / "pg"
        local_dir.mkdir(exist_ok=True)
        local = local_dir / local_name
        if self._forwards.get(str(local)) == remote_socket:
            return str(local_dir)  # the master forwards it already (plan_forward)
        argv = ["ssh", "-S", self.control_path, "-O", "forward", "-L",
                f"{local}:{remote_socket}", *self.options(), "--", self.destination()]  # fmt: skip
        try:
            done = subprocess.run(argv, capture_output=True, timeout=30, check=False)
        except subprocess.TimeoutExpired:
            raise FactUnavailable(
                f"ssh: cannot forward {remote_socket}: no answer in 30 s"
            ) from None
        if done.returncode != 0:
            reason = ssh_words.telling(done.stderr.decode(errors="replace"))
            raise FactUnavailable(f"ssh: cannot forward {remote_socket}: {reason}")
        return str(local_dir)

    def close(self) -> None:
        # SIGTERM ends the master as `ssh -O exit` would (its sessions close, the server sees the
        # connection end), without starting one more ssh process to ask it.
        self._stop_master()
        if self.cancel is not None:
            self.cancel.discard(self)
        shutil.rmtree(self._dir, ignore_errors=True)


def read_line(stream: IO[bytes] | None) -> str:
    return stream.readline().decode(errors="replace").strip() if stream is not None else ""
