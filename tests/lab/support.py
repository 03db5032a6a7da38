"""What the lab tests share: the lab handle, one audit of the lab as a user runs it, what a
host looks like from outside (observe.sh and the zone probes) and what pristine means.

A support module, not a test module: tests import from here, never from each other.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from tests import pki
from walguard.lab import manage, settings
from walguard.lab.hosts import Host
from walguard.report import results_json

HOST_COUNT = 3


@dataclass(frozen=True)
class Lab:
    hosts: list[Host]
    # The inventory that lists these hosts (the lab's; the hosts beside it have their own).
    inventory: Path = settings.INVENTORY_PATH

    def ssh(
        self, host: Host, command: str, *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the host as the audit user (real SSH, strict host keys)."""
        done = subprocess.run(
            manage.ssh_argv(host, [command]),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"ssh {host.name} {command!r} failed ({done.returncode}): {done.stderr}"
            )
        return done

    def walguard(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real CLI, as a user would."""
        done = subprocess.run(
            [sys.executable, "-m", "walguard.cli", *args],
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"walguard {' '.join(args)} failed: {done.stderr}")
        return done

    def reset_applied(self, *only: Host) -> None:
        """Reset, together, the hosts (these, or all of the lab's) that have a scenario applied;
        a pristine host is left alone (a reset is a reboot). Read from each host's own record,
        not `lab status`: that one is about the whole lab, whose other hosts (the guest, the
        hosts beside the lab) another stream stops and starts meanwhile."""
        broken = [h.name for h in (only or self.hosts) if h.applied_scenarios()]
        if broken:
            self.walguard("lab", "scenario", "reset", *broken)


SWITCH = "sudo -n -u postgres psql -XAtq -c 'SELECT txid_current()' -c 'SELECT pg_switch_wal()'"


@dataclass(frozen=True)
class Audit:
    exit_status: int
    doc: dict[str, Any]
    stdout: str
    stderr: str

    def by_result(self, host: str, result: str) -> set[str]:
        return {c["control"] for c in self.doc["hosts"][host]["controls"] if c["result"] == result}

    def message(self, host: str, control: str) -> str:
        for c in self.doc["hosts"][host]["controls"]:
            if c["control"] == control:
                return str(c["message"])
        raise KeyError(control)


SCHEMA = jsonschema.Draft202012Validator(json.loads(results_json.SCHEMA_PATH.read_text()))


def audit(
    tmp_path: Path,
    *args: str,
    inventory: Path = settings.INVENTORY_PATH,
    root: Path | None = None,
) -> Audit:
    """One audit; its run directory goes under `root` (by default a fresh one), and its
    results are the newest run's there."""
    root = root or tmp_path / f"reports-{time.monotonic_ns()}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "walguard.cli",
            "audit",
            "--inventory",
            str(inventory),
            "--report-root",
            str(root),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    runs = sorted(root.glob("*/results.json")) if root.exists() else []
    doc = json.loads(runs[-1].read_text()) if runs else {}
    if doc:
        # Every run the lab tests make is checked against the documented schema.
        SCHEMA.validate(doc)
    return Audit(done.returncode, doc, done.stdout, done.stderr)


def wait_for_archiver_failure(lab: Lab, host_name: str) -> None:
    host = next(h for h in lab.hosts if h.name == host_name)
    lab.ssh(host, SWITCH)
    for _ in range(60):
        out = lab.ssh(host, "psql -XAt -d postgres -c 'SELECT failed_count FROM pg_stat_archiver'")
        if int(out.stdout.strip() or 0) > 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"{host_name}: the archiver recorded no failure within 30 s")


def inventory_with(tmp_path: Path, extra_hosts: dict[str, dict[str, Any]]) -> Path:
    import yaml

    doc = yaml.safe_load(settings.INVENTORY_PATH.read_text())
    doc["all"]["children"]["lab"]["hosts"].update(extra_hosts)
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


OBSERVE = (Path(__file__).parent / "observe.sh").read_text()


SEGMENT = re.compile(r"[0-9A-F]{24}")


SEGMENT_BYTES = 16 * 1024 * 1024


PGBACKREST_CHECK = "sudo -n -u postgres pgbackrest --stanza=main check"


def observe(lab: Lab, host: Host) -> dict[str, str]:
    out = lab.ssh(host, OBSERVE, check=False).stdout
    facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    facts["zone_b_connects"] = str(zone_connects(settings.ZONES[1].netns, host.address))
    facts["zone_a_connects"] = str(zone_connects(settings.ZONES[0].netns, host.address))
    return facts


def zone_connects(netns: str, address: str) -> bool:
    argv = ["ip", "netns", "exec", netns, "nc", "-z", "-w", "3", address, "5432"]
    return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0


def archiver_failures(facts: dict[str, str]) -> int:
    return int(facts["archiver"].split("/")[1])


def assert_pristine(facts: dict[str, str], host: Host) -> None:
    assert facts["archive_mode"] == "on/false"
    assert facts["archive_command"] == "test -f /pg_archive/%f || cp %p /pg_archive/%f"
    assert archiver_failures(facts) == 0
    assert int(facts["archiver"].split("/")[0]) >= 1
    assert int(facts["ready"]) <= 1
    assert facts["dir"] == "postgres:postgres 750"
    assert facts["mount"] == "ext4"
    assert int(facts["avail"]) > 512 * 1024 * 1024
    assert facts["pg_active"] == "active"
    assert facts["failed_units"].strip() == ""
    assert facts["journal_err"] == "0"
    assert facts["listen"].split() == sorted(["127.0.0.1:5432", f"{host.address}:5432"])
    assert facts["zone_a_connects"] == "True"
    assert facts["zone_b_connects"] == "False"
    assert facts["wal_level"] == "replica"
    assert facts["archive_timeout"] == "1min"
    assert facts["dir_exists"] == "yes"
    # A base backup taken from this host (standby-of-db1) leaves its .backup file as the last
    # archived until the next switch: that is still a pristine archive.
    last = facts["last_archived"]
    assert SEGMENT.fullmatch(last) or re.fullmatch(r"[0-9A-F]{24}\.[0-9A-F]{8}\.backup", last), last
    assert facts["odd_segments"].strip() == ""  # whole segments of this cluster, no links
    assert facts["archive_link"] == ""
    assert facts["newest_segment_perms"].split(":")[0] == "postgres", facts["newest_segment_perms"]
    assert facts["is_mountpoint"] == "yes"
    assert facts["same_dev_as_root"] == "no"
    assert facts["in_recovery"] == "f"
    assert facts["timeline"] == "00000001"
    # The validation matrix's facts.
    assert facts["unit_file_state"] == "enabled-runtime"
    assert facts["parent_unit_file_state"] == "enabled"
    assert facts["dpkg_status"] == "ii"
    assert facts["lab_change_conf"] == "no"
    assert facts["need_daemon_reload"] == "no"
    assert facts["stray_listener"] == ""
    assert int(facts["nft_lines"]) > 3
    assert facts["chrony"] == "active"
    assert facts["hosts_addr"] == host.address
    assert facts["cert_subject"] == f"CN={host.name}"
    assert int(facts["cert_days_left"]) > 300
    assert facts["postgres_exe"] == "/usr/lib/postgresql/15/bin/postgres"


def settle_db1(lab: Lab) -> None:
    """pg_basebackup left db1's last archived file a backup history file (NAME.XXXXXXXX.backup):
    switch once more so that db1 is back to its pristine archiver state."""
    db1 = lab.hosts[0]
    deadline = time.monotonic() + 30
    while not SEGMENT.fullmatch(observe(lab, db1)["last_archived"]):
        assert time.monotonic() < deadline, "db1 archived no segment after the base backup"
        switch_and_wait_archived(lab, db1)


def signing_args(directory: Path) -> list[str]:
    """Sign every run, and verify earlier runs against the same CA."""
    ca = pki.make_ca(directory)
    signer = pki.issue(directory, ca, "nightly report signer")
    return ["--sign-key", str(signer.key_path), "--sign-cert", str(signer.cert_path),
            "--verify-ca", str(ca.cert_path)]  # fmt: skip


def row_reaches_standby(lab: Lab, standby: Host) -> None:
    """A row written on db1 appears on the standby (the probe table is dropped again)."""
    db1 = lab.hosts[0]
    token = secrets.token_hex(8)
    table = "walguard_lab_replication_probe"

    def sql(host: Host, *statements: str) -> str:
        args = " ".join(f"-c {shlex.quote(s)}" for s in statements)
        return lab.ssh(host, f"sudo -n -u postgres psql -XAtq -v ON_ERROR_STOP=1 {args}").stdout

    sql(db1, f"CREATE TABLE {table} (token text)", f"INSERT INTO {table} VALUES ('{token}')")
    try:
        deadline = time.monotonic() + 30
        query = f"SELECT count(*) FROM {table} WHERE token = '{token}'"
        while True:
            seen = lab.ssh(
                standby, f"sudo -n -u postgres psql -XAtq -c {shlex.quote(query)}", check=False
            )
            if seen.stdout.strip() == "1":
                break
            assert time.monotonic() < deadline, f"the row never reached {standby.name}"
            time.sleep(0.5)
    finally:
        sql(db1, f"DROP TABLE IF EXISTS {table}")


def archived_count(facts: dict[str, str]) -> int:
    return int(facts["archiver"].split("/")[0])


def switch_and_wait_archived(lab: Lab, host: Host) -> dict[str, str]:
    """Switch WAL, then wait (bounded) until the archiver has archived one more file."""
    before = archived_count(observe(lab, host))
    lab.ssh(host, SWITCH)
    deadline = time.monotonic() + 30
    facts = observe(lab, host)
    while archived_count(facts) <= before and time.monotonic() < deadline:
        time.sleep(0.5)
        facts = observe(lab, host)
    return facts


def on_each(placed: list[tuple[str, Host]], check: Callable[[str, Host], None]) -> list[str]:
    """Run `check` for every (scenario, host) side by side (each on its own host); what failed,
    as one message per scenario naming its host."""
    with ThreadPoolExecutor(max_workers=max(len(placed), 1)) as pool:
        done = [(name, host, pool.submit(check, name, host)) for name, host in placed]
    problems = []
    for name, host, future in done:
        error = future.exception()
        if isinstance(error, AssertionError):
            problems.append(f"{host.name} ({name}): {error}")
        elif error is not None:
            raise error
    return problems
