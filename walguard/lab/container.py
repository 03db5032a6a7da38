"""Where a lab container host lives and how to find its processes: its name and address, its
state directory (template/, upper/, merged/, the archive volume, nspawn.pid, console.log), its
nspawn and init PIDs, the scenarios applied to it. What the modules that build, boot and run
commands in a host need of it, without its lifecycle (walguard.lab.hosts), which uses them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from walguard.lab import settings
from walguard.lab.labhost import console_tail, pid_from_file, ssh_argv


@dataclass(frozen=True)
class Container:
    """A lab host in a container: a database host (dbN, on the bridge) or a zone's probe host
    (probe-a, probe-b: inside the zone's network namespace; sshd, psql and chrony, no cluster)."""

    name: str

    @property
    def address(self) -> str:
        return settings.host_address(self.name)

    @property
    def zone(self) -> settings.Zone | None:
        return settings.zone_of(self.name)

    @property
    def is_probe(self) -> bool:
        return self.zone is not None

    # The lab host interface (walguard.lab.labhost.LabHost); the work is in this module's
    # functions, which take the host.
    @property
    def ssh_port(self) -> int:
        return 22

    def known_hosts_lines(self) -> list[str]:
        key_type, key_b64 = (self.dir / "host_key.pub").read_text().split()[:2]
        return [f"{self.name},{self.address} {key_type} {key_b64}\n"]

    def ssh_argv(self, command: list[str]) -> list[str]:
        return ssh_argv(self.address, command)

    def evidence(self) -> str:
        return console_tail(self.dir / "console.log")

    def record_scenario(self, name: str) -> None:
        with (self.dir / "scenarios").open("a") as f:
            f.write(f"{name}\n")

    def applied_scenarios(self) -> list[str]:
        path = self.dir / "scenarios"
        return path.read_text().split() if path.exists() else []

    @property
    def dir(self) -> Path:
        return settings.STATE_DIR / "hosts" / self.name

    @property
    def merged(self) -> Path:
        return self.dir / "merged"

    @property
    def archive_image(self) -> Path:
        return self.dir / "pg_archive.img"

    @property
    def pid_file(self) -> Path:
        return self.dir / "nspawn.pid"

    def nspawn_pid(self) -> int | None:
        return pid_from_file(self.pid_file, lambda argv: argv[0].endswith(b"systemd-nspawn"))

    def leader_pid(self) -> int | None:
        """PID (on this machine) of the container's init: the descendant that is PID 1 in its own
        PID namespace."""
        root = self.nspawn_pid()
        if root is None:
            return None
        todo = [root]
        while todo:
            pid = todo.pop()
            if is_pid_ns_init(pid):
                return pid
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            todo.extend(int(c) for c in children)
        return None

    def running(self) -> bool:
        return self.nspawn_pid() is not None


def is_pid_ns_init(pid: int) -> bool:
    """Whether a process is PID 1 in its own PID namespace (a container's init)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("NSpid:"):
            ids = line.split()[1:]
            return len(ids) > 1 and ids[-1] == "1"
    return False
