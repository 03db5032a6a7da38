"""Benchmark: walguard's one-collector-per-host facts against plain testinfra written the way its
docs teach (one testinfra call per assertion), over the paramiko backend and the ssh backend.

Everything is measured in this one run, on the lab hosts, first with the lab's own latency and then
with 20 ms added to every SSH round trip, because real hosts are not on loopback. This machine's
kernel has no netem qdisc (`tc qdisc ... netem delay` answers "Specified qdisc kind is unknown"),
so the latency is added by a relay on the SSH path (bench/delay_relay.py as ProxyCommand, half
the delay each way). It prints wall time per host and ratios; it asserts nothing about speed.

The inventory's probe hosts (`walguard_zone` set) are vantage points for WG-NET-004, not
database hosts: they have no PostgreSQL to read, so only the database hosts are measured.

    sudo .venv/bin/python bench/compare.py [--inventory inventories/lab.yml] [--repeat 3]
        [--delay-ms 20] [--hosts N]

`--delay-ms 0` leaves out the delayed measurement; `--hosts N` measures the first N database
hosts only (the test suite's smoke run uses both).
"""

from __future__ import annotations

import argparse
import functools
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import paramiko
import testinfra
from testinfra.backend.paramiko import ParamikoBackend

from walguard.facts.collect import collect
from walguard.inventory.load import Target, load_inventory
from walguard.policy.model import Policy

RELAY = Path(__file__).with_name("delay_relay.py")
# The SSH ProxyCommand that adds latency for the second measurement (None: direct).
PROXY: str | None = None


class StrictParamikoBackend(ParamikoBackend):  # type: ignore[misc]
    """testinfra's paramiko backend, but refusing unknown host keys like the rest of walguard."""

    known_hosts: str | None = None

    @functools.cached_property
    def client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.known_hosts:
            client.load_host_keys(self.known_hosts)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = None
        if PROXY:
            port = str(self.host.port or 22)
            sock = paramiko.ProxyCommand(PROXY.replace("%h", self.host.name).replace("%p", port))
        client.connect(
            sock=sock,
            hostname=self.host.name,
            port=int(self.host.port or 22),
            username=self.host.user,
            key_filename=self.ssh_identity_file,
            timeout=self.timeout,
            allow_agent=False,
            look_for_keys=False,
        )
        return client


def testinfra_controls(host: Any, policy: Policy) -> int:
    """The archive controls, one testinfra call per assertion. Returns the number of calls."""
    calls = 0

    def psql(sql: str) -> str:
        nonlocal calls
        calls += 1
        out = host.run("psql -XAt -d postgres -c %s", sql)
        assert out.rc == 0, out.stderr
        return str(out.stdout).strip()

    def call(fn: Callable[[], Any]) -> Any:
        nonlocal calls
        calls += 1
        return fn()

    d = policy.archive_dir
    assert (
        psql(
            "SELECT setting || '|' || pending_restart FROM pg_settings WHERE name = 'archive_mode'"
        )
        == "on|false"
    )
    assert psql("SHOW wal_level") in ("replica", "logical")
    cmd = psql("SHOW archive_command")
    assert "%p" in cmd and "%f" in cmd
    assert 0 < int(psql("SELECT setting FROM pg_settings WHERE name = 'archive_timeout'")) <= 900
    f = host.file(d)
    assert call(lambda: f.exists)
    assert call(lambda: f.is_directory)
    assert call(lambda: host.mount_point(d).exists)
    assert call(lambda: f.user) == policy.archive_owner
    assert call(lambda: f.group) == policy.archive_group
    assert not call(lambda: f.mode) & 0o022
    df = call(lambda: host.run("df -P -B1 %s", d)).stdout.splitlines()[-1].split()
    assert int(df[3]) * 100 >= int(df[1]) * policy.archive_min_free_percent
    assert int(psql("SELECT archived_count FROM pg_stat_archiver")) > 0
    assert (
        psql("SELECT coalesce(last_failed_time <= last_archived_time, true) FROM pg_stat_archiver")
        == "t"
    )
    assert (
        int(psql("SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"))
        <= policy.ready_backlog_max
    )
    last = psql("SELECT last_archived_wal FROM pg_stat_archiver")
    size = call(lambda: host.run("sudo -n stat -c %%s %s", f"{d}/{last}")).stdout.strip()
    assert int(size) == policy.segment_size_bytes
    listing = call(lambda: host.run("sudo -n ls %s", d)).stdout.split()
    assert last in listing
    return calls


def _time(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def walguard_host(target: Target, policy: Policy) -> None:
    if PROXY:
        common = f"-o ProxyCommand={shlex.quote(PROXY)}"
        target = replace(
            target,
            vars=MappingProxyType({**target.vars, "ansible_ssh_common_args": common}),
            ssh_args=(*target.ssh_args, *shlex.split(common)),
        )
    facts = collect(target)
    if not (facts.reachable and facts.pg.value is not None and facts.archive.value is not None):
        # A benchmark of a host whose facts could not be had would time an error path.
        reason = facts.error or facts.pg.error or facts.archive.error
        raise SystemExit(f"bench: walguard could not read {target.name}'s facts: {reason}")


def testinfra_ssh_host(target: Target, policy: Policy) -> int:
    with tempfile.TemporaryDirectory(prefix="wgb-") as tmp:
        extra = "-o BatchMode=yes -o StrictHostKeyChecking=yes"
        if target.connect.known_hosts_file:
            extra += f" -o UserKnownHostsFile={shlex.quote(target.connect.known_hosts_file)}"
        if PROXY:
            extra += f" -o ProxyCommand={shlex.quote(PROXY)}"
        host = testinfra.get_host(
            f"ssh://{target.user}@{target.address}:{target.port}",
            ssh_identity_file=target.key_file,
            ssh_extra_args=extra,
            controlpath=f"{tmp}/%%C",  # testinfra %-formats its command line
            controlpersist=60,
        )
        calls = testinfra_controls(host, policy)
        subprocess.run(
            ["ssh", "-o", f"ControlPath={tmp}/%C", "-O", "exit", f"{target.user}@{target.address}"],
            capture_output=True,
            check=False,
        )
        return calls


def testinfra_paramiko_host(target: Target, policy: Policy) -> int:
    backend = StrictParamikoBackend(
        f"{target.user}@{target.address}:{target.port}", ssh_identity_file=target.key_file
    )
    backend.known_hosts = target.connect.known_hosts_file
    host = testinfra.host.Host(backend)
    try:
        return testinfra_controls(host, policy)
    finally:
        backend.client.close()


def measure(targets: list[Target], repeat: int) -> dict[str, float]:
    """Median wall seconds per host for each way of checking."""
    ways: dict[str, Callable[[Target, Policy], Any]] = {
        "walguard (collector + 1 query)": walguard_host,
        "testinfra ssh backend": testinfra_ssh_host,
        "testinfra paramiko backend": testinfra_paramiko_host,
    }
    medians = {}
    for name, fn in ways.items():
        runs = []
        for _ in range(repeat):
            for t in targets:
                runs.append(_time(functools.partial(fn, t, t.policy)))
        medians[name] = statistics.median(runs)
    return medians


def database_hosts(targets: list[Target]) -> list[Target]:
    """The hosts to measure: not the probe hosts, which the inventory marks with `walguard_zone`
    (vantage points for WG-NET-004, with no PostgreSQL of their own)."""
    databases = [t for t in targets if t.policy.zone is None]
    if not databases:
        raise SystemExit("bench: the inventory has no database host (only probe hosts)")
    return databases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--inventory", default="inventories/lab.yml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--delay-ms", type=int, default=20, help="0: no delayed measurement")
    ap.add_argument("--hosts", type=int, default=None, help="the first N database hosts only")
    args = ap.parse_args()
    if (args.hosts is not None and args.hosts < 1) or args.repeat < 1:
        ap.error("--hosts and --repeat take a whole number of at least 1")
    targets = database_hosts(load_inventory(Path(args.inventory)))[: args.hosts]
    # Round trips per host, from walguard's own count.
    rts = {t.name: collect(t).round_trips for t in targets}
    calls = testinfra_ssh_host(targets[0], targets[0].policy)
    print(
        f"hosts: {len(targets)}; walguard round trips per host: "
        f"{', '.join(f'{k}={v}' for k, v in rts.items())}; "
        f"testinfra calls per host: {calls}"
    )
    results = {}
    global PROXY
    ways: list[tuple[str, str | None]] = [("lab latency", None)]
    if args.delay_ms > 0:
        relay = f"{sys.executable} {RELAY} %h %p {args.delay_ms / 2}"
        ways.append((f"+{args.delay_ms} ms round trip (relay)", relay))
    for label, proxy in ways:
        PROXY = proxy
        results[label] = measure(targets, args.repeat)
    for label, medians in results.items():
        base = medians["walguard (collector + 1 query)"]
        print(f"\n{label} (median per host over {args.repeat} x {len(targets)} runs)")
        for name, secs in medians.items():
            print(f"  {name:32} {secs * 1000:8.0f} ms   {secs / base:5.1f}x walguard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
