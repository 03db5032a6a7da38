"""Running commands as root inside a running container host, through nsenter into all of its
namespaces (no SSH: this is how the lab sets hosts up and applies scenarios)."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from walguard.lab.errors import LabError
from walguard.lab.proc import run

if TYPE_CHECKING:
    from walguard.lab.container import Container


def exec_in(
    host: Container,
    argv: list[str],
    *,
    input_text: str | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run a command as root inside the host (all its namespaces)."""
    leader = host.leader_pid()
    if leader is None:
        raise LabError(f"{host.name} is not running")
    return run(
        ["nsenter", "-t", str(leader), "-a", "--", *argv],
        input_text=input_text,
        check=check,
        timeout=timeout,
    )


def psql(host: Container, sql: str) -> str:
    done = exec_in(
        host,
        ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
    )
    return done.stdout
