"""Collecting many hosts' facts at once, in the process that judges them.

Collecting a host's facts is waiting: an SSH handshake, the collector's run on the host, one
PostgreSQL query. Judging a control against collected facts takes microseconds. So the run
collects the selected hosts' facts first, at most `forks` hosts at a time, in threads of the one
controller process (each thread drives its host's OpenSSH master connection and waits on it),
and pytest then judges every item against the cached facts. Measured against one pytest-xdist
worker process per concurrent host (bench/scale.py), this spends a fraction of the controller's
CPU: no worker processes, no per-worker imports and collection, and the waiting costs nothing.

`forks` bounds the SSH connections being set up at once, so that a bastion's or the hosts'
`MaxStartups` (OpenSSH's default starts refusing at 10 unauthenticated connections) is not
overrun; each host has one connection. A host that hangs holds one thread until its own
timeouts (`walguard_connect_timeout_s`, `walguard_command_timeout_s`, the retries) end it; the
others go on in the remaining threads.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from walguard.facts.host import HostFacts
from walguard.facts.transport import Cancel
from walguard.inventory.load import Target

DEFAULT_FORKS = 10
MAX_FORKS = 100  # sshd refuses every new unauthenticated connection beyond MaxStartups' 100


def forks_value(text: str | int) -> int:
    """`--forks` (or WALGUARD_FORKS) as a number of hosts; ValueError says what is allowed."""
    try:
        forks = int(text)
    except ValueError:
        raise ValueError(f"--forks takes a whole number of hosts, not {text!r}") from None
    if not 1 <= forks <= MAX_FORKS:
        raise ValueError(
            f"--forks {forks}: between 1 and {MAX_FORKS} hosts at once (sshd's MaxStartups "
            "refuses new connections beyond 100 by default; a bastion's at 10)"
        )
    return forks


@dataclass(frozen=True)
class Done:
    """One host's collection, as the progress line and results.json see it."""

    host: str
    reachable: bool
    seconds: float


class FanOut:
    """Runs `collect(target)` for many targets, at most `forks` at once; `wait()` blocks until
    every one has ended (each ends: collection turns every failure into the host's ERROR)."""

    def __init__(
        self,
        collect: Callable[[Target], HostFacts],
        forks: int,
        on_done: Callable[[Done], None] | None = None,
        *,
        cancel: Cancel | None = None,
    ) -> None:
        self._collect = collect
        self._pool = ThreadPoolExecutor(max_workers=forks, thread_name_prefix="walguard-facts")
        self._on_done = on_done
        self._cancel = cancel
        self._futures: dict[str, Future[HostFacts]] = {}
        self._beside: list[threading.Thread] = []
        self._lock = threading.Lock()

    def beside(self, work: Callable[[], None]) -> None:
        """Runs `work` on a thread of its own, outside the `forks` bound (the zone probes: a
        few connections that each try every host, for as long as the hosts' collection)."""
        thread = threading.Thread(target=work, name="walguard-beside")
        thread.start()
        self._beside.append(thread)

    def start(self, targets: Sequence[Target]) -> None:
        for target in targets:
            if target.name not in self._futures:
                self._futures[target.name] = self._pool.submit(self._one, target)

    def pending(self, host: str) -> Future[HostFacts] | None:
        return self._futures.get(host)

    def _one(self, target: Target) -> HostFacts:
        started = time.monotonic()
        found = self._collect(target)
        if self._on_done is not None:
            done = Done(target.name, found.reachable, time.monotonic() - started)
            with self._lock, contextlib.suppress(OSError):
                # One at a time (it draws on the terminal); a closed terminal loses no facts.
                self._on_done(done)
        return found

    def wait(self) -> None:
        """Until every host has ended. On an interrupt, hosts not yet started are dropped and
        the interrupt goes on (the threads already collecting end with their own timeouts)."""
        try:
            for future in list(self._futures.values()):
                future.exception()  # waits; a collection never raises (it is the host's ERROR)
            for thread in self._beside:
                thread.join()
        except BaseException:
            self.stop()
            raise
        self._pool.shutdown(wait=True)

    def stop(self) -> None:
        """Hosts not started are dropped; those being collected are ended (their masters
        stopped), so that an interrupted run ends now rather than after every timeout."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._cancel is not None:
            self._cancel()
