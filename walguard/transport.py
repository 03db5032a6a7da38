"""SSH to one host through testinfra's ssh backend (OpenSSH, ControlMaster/ControlPersist).

Strict host-key checking always: against the inventory's known_hosts file when it names one, else
the user's own; never accept a new key. `~/.ssh/config` (ProxyJump bastions and the like) is
honoured because ssh reads it unless told otherwise. testinfra has no per-command timeout, so the
remote side is wrapped in `timeout` and ssh itself gives up on a dead peer (ServerAlive*).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from testinfra.backend.ssh import SshBackend

from walguard.errors import FactUnavailable
from walguard.inventory import Target
from walguard.policy import Policy


def _one_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    # ssh's last line is the reason ("Connection refused", "Host key verification failed.").
    return lines[-1] if lines else "no output"


class Connection:
    """One host's SSH master connection; counts every round trip made for facts."""

    def __init__(self, target: Target, policy: Policy) -> None:
        self.target = target
        self.policy = policy
        self.round_trips = 0
        self._dir = Path(tempfile.mkdtemp(prefix="wg-"))
        self.control_path = str(self._dir / "ctl")
        extra = [
            "-o BatchMode=yes",
            "-o StrictHostKeyChecking=yes",
            "-o ServerAliveInterval=5",
            "-o ServerAliveCountMax=3",
        ]
        if policy.known_hosts_file:
            extra.append(f"-o UserKnownHostsFile={shlex.quote(policy.known_hosts_file)}")
        if target.key_file:
            extra.append("-o IdentitiesOnly=yes")
        common = target.vars.get("ansible_ssh_common_args")
        if isinstance(common, str) and common.strip():
            extra.append(common)
        self._extra = " ".join(extra)
        user = f"{target.user}@" if target.user else ""
        self.backend = SshBackend(
            f"{user}{target.address}:{target.port}",
            ssh_identity_file=target.key_file,
            timeout=policy.connect_timeout_s,
            controlpath=self.control_path,
            controlpersist=120,
            ssh_extra_args=self._extra,
        )

    def open(self) -> None:
        """Start the master connection ourselves, detached (-f) with its stderr in a file: a
        ControlPersist master started by the first command would inherit that command's pipes
        and keep the caller waiting; and this way a refused key or host says why."""
        log = self._dir / "master.log"
        argv = [
            "ssh",
            "-f",
            "-N",
            "-o",
            "ControlMaster=yes",
            "-o",
            "ControlPersist=120",
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            f"ConnectTimeout={self.policy.connect_timeout_s}",
        ]
        argv += shlex.split(self._extra)
        if self.target.key_file:
            argv += ["-i", self.target.key_file]
        argv += ["-p", str(self.target.port), self._ssh_destination()]
        with log.open("w") as err:
            try:
                done = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    timeout=self.policy.connect_timeout_s + 10,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise FactUnavailable(
                    f"ssh: no connection within {self.policy.connect_timeout_s + 10} s"
                ) from None
        if done.returncode != 0:
            raise FactUnavailable(f"ssh: {_one_line(log.read_text(errors='replace'))}")

    def run(self, remote_command: str, *, become: bool = False) -> tuple[int, str, str]:
        """Run one command (one round trip); ERROR-worthy failures raise FactUnavailable."""
        timeout = self.policy.command_timeout_s
        wrapped = f"timeout {timeout} {'sudo -n ' if become else ''}{remote_command}"
        self.round_trips += 1
        try:
            out = self.backend.run(wrapped)
        except RuntimeError as exc:  # testinfra raises on ssh's own exit status 255
            result = exc.args[0] if exc.args else None
            stderr = getattr(result, "stderr", "") or str(exc)
            raise FactUnavailable(f"ssh: {_one_line(stderr)}") from None
        if out.rc == 124:
            raise FactUnavailable(f"remote command timed out after {timeout} s")
        if become and out.rc == 1 and "sudo:" in out.stderr:
            raise FactUnavailable(f"sudo refused: {_one_line(out.stderr)}")
        return out.rc, out.stdout, out.stderr

    def forward_unix_socket(self, remote_socket: str, local_name: str) -> str:
        """Forward a remote unix socket over the existing master connection; returns the
        local socket's directory (a new round trip is counted by whoever uses it)."""
        local_dir = self._dir / "pg"
        local_dir.mkdir(exist_ok=True)
        local = local_dir / local_name
        argv = [
            "ssh",
            "-S",
            self.control_path,
            "-O",
            "forward",
            "-L",
            f"{local}:{remote_socket}",
            self._ssh_destination(),
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise FactUnavailable(f"ssh: cannot forward {remote_socket}: {_one_line(done.stderr)}")
        return str(local_dir)

    def _ssh_destination(self) -> str:
        user = f"{self.target.user}@" if self.target.user else ""
        return f"{user}{self.target.address}"

    def close(self) -> None:
        subprocess.run(
            ["ssh", "-S", self.control_path, "-O", "exit", self._ssh_destination()],
            capture_output=True,
            timeout=30,
            check=False,
        )
        shutil.rmtree(self._dir, ignore_errors=True)
