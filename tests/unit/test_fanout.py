"""The fan-out: hosts' facts collected many at once before pytest judges them, bounded by
`--forks`, a hung host holding up nobody but itself, and only the selected hosts contacted.

The audits here are real runs of `walguard audit` against hosts on this machine that cannot be
audited (no lab needed): a port nobody listens on (ssh: Connection refused) and a port whose
listener never answers (ssh waits for the SSH banner until its ConnectTimeout), which is what a
host with a stopped sshd looks like.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from walguard.facts.fanout import Done, FanOut, forks_value
from walguard.facts.host import HostFacts
from walguard.inventory.load import Target

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose connections are accepted by the kernel and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def inventory(tmp_path: Path, hosts: dict[str, int]) -> Path:
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    lines = ["all:", "  vars:", "    ansible_user: nobody", "    ansible_host: 127.0.0.1",
             f"    walguard_known_hosts_file: {known_hosts}", "    walguard_ssh_retries: 0",
             "    walguard_connect_timeout_s: 2", "  hosts:"]  # fmt: skip
    lines += [f"    {name}:\n      ansible_port: {port}" for name, port in hosts.items()]
    path = tmp_path / "inventory.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def audit(tmp_path: Path, inv: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    root = tmp_path / "reports"
    # An audit of its own, as a user starts it: none of this test run's xdist variables.
    env = {k: v for k, v in (env or os.environ).items() if not k.startswith("PYTEST_XDIST")}
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
         "--report-root", str(root), *args],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    runs = sorted(root.glob("*/results.json"))
    return done, (json.loads(runs[-1].read_text()) if runs else None)


def test_a_hung_host_holds_up_no_other(tmp_path: Path, silent_port: int, closed_port: int) -> None:
    """Two threads, five hosts: the hung one holds one thread until its own ConnectTimeout; the
    other four go through the other thread meanwhile."""
    hosts = {"hung": silent_port, **{f"refused{i}": closed_port for i in range(1, 5)}}
    done, doc = audit(tmp_path, inventory(tmp_path, hosts), "--forks", "2")
    assert done.returncode == 6, done.stdout + done.stderr  # every control ERROR, nothing failed
    hung = doc["hosts"]["hung"]
    assert "timed out" in hung["error"]
    for name in hosts:
        if name == "hung":
            continue
        other = doc["hosts"][name]
        assert "Connection refused" in other["error"]
        # Collected while the hung host was still pending: after it began, before it ended.
        assert hung["collection"]["started"] < other["collection"]["finished"]
        assert other["collection"]["finished"] < hung["collection"]["finished"]
    assert all(h["collections"] == 1 and h["fact_collections"] == ["main"]
               for h in doc["hosts"].values())  # fmt: skip


def test_an_audit_started_from_an_xdist_worker_names_its_own_processes(
    tmp_path: Path, closed_port: int
) -> None:
    """An audit run from inside another pytest-xdist run (a CI job's) inherits its
    PYTEST_XDIST_WORKER: the facts' collector is still this audit's own process."""
    inv = inventory(tmp_path, {"alpha": closed_port})
    env = {**os.environ, "PYTEST_XDIST_WORKER": "gw7"}
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
         "--report-root", str(tmp_path / "reports"), "-k", "WG-ARC-001"],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 6, done.stdout + done.stderr
    (results,) = (tmp_path / "reports").glob("*/results.json")
    assert json.loads(results.read_text())["hosts"]["alpha"]["fact_collections"] == ["main"]


def test_only_the_selected_hosts_are_contacted(tmp_path: Path, closed_port: int) -> None:
    hosts = {"alpha": closed_port, "beta": closed_port, "gamma": closed_port}
    done, doc = audit(tmp_path, inventory(tmp_path, hosts), "-k", "beta")
    assert done.returncode == 6, done.stdout + done.stderr
    assert doc["hosts"]["beta"]["collection"] is not None
    for name in ("alpha", "gamma"):
        assert doc["hosts"][name]["collection"] is None
        assert doc["hosts"][name]["reachable"] is None
    run_dir = tmp_path / "reports" / doc["run"]["id"]
    assert (run_dir / "evidence" / "beta").is_dir()
    assert not (run_dir / "evidence" / "alpha").exists()


def test_xdist_and_the_fan_out_judge_alike(tmp_path: Path, closed_port: int) -> None:
    hosts = {f"db{i}": closed_port for i in range(1, 4)}
    inv = inventory(tmp_path, hosts)
    _, fanned = audit(tmp_path, inv)
    _, distributed = audit(tmp_path, inv, "-n", "2")

    def verdicts(doc: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
        return {(r["host"], r["control"]): (r["result"], r["message"])
                for h in doc["hosts"].values() for r in h["controls"]}  # fmt: skip

    assert verdicts(fanned) == verdicts(distributed)
    assert len(verdicts(fanned)) == len(hosts) * len(fanned["controls"])
    assert {h["fact_collections"][0] for h in distributed["hosts"].values()} <= {"gw0", "gw1"}


@pytest.mark.parametrize(("given", "env"), [("0", None), ("101", None), ("many", None),
                                             (None, "0")])  # fmt: skip
def test_forks_out_of_bounds_is_a_usage_error(
    tmp_path: Path, closed_port: int, given: str | None, env: str | None
) -> None:
    environ = {**os.environ, **({"WALGUARD_FORKS": env} if env is not None else {})}
    args = ("--forks", given) if given is not None else ()
    done, doc = audit(tmp_path, inventory(tmp_path, {"db1": closed_port}), *args, env=environ)
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--forks" in done.stderr
    assert "between 1 and 100" in done.stderr or "whole number" in done.stderr
    if env is not None:
        assert "WALGUARD_FORKS" in done.stderr
    assert doc is None and not (tmp_path / "reports").exists()  # no host touched, no run made


def test_forks_value() -> None:
    assert forks_value("10") == 10
    for bad in ("0", "-1", "101", "ten"):
        with pytest.raises(ValueError):
            forks_value(bad)


def target(name: str) -> Target:
    return Target(name, "192.0.2.1", 22, "walguard", None, True, ("all",), MappingProxyType({}))


def test_fan_out_bounds_what_runs_at_once_and_reports_each_host() -> None:
    """FanOut alone, with a collector that waits for the test to let each host go."""
    release = {name: threading.Event() for name in ("a", "b", "c", "d")}
    running: list[str] = []
    peak = 0
    lock = threading.Lock()

    def collect(t: Target) -> HostFacts:
        nonlocal peak
        with lock:
            running.append(t.name)
            peak = max(peak, len(running))
        release[t.name].wait()
        with lock:
            running.remove(t.name)
        return HostFacts.unreachable(t.name, t.address, f"{t.name}: let go")

    seen: list[Done] = []
    fanout = FanOut(collect, 2, seen.append)
    fanout.start([target(n) for n in release])
    for name in ("b", "c", "d"):  # "a" stays pending throughout, like a hung host
        release[name].set()
        pending = fanout.pending(name)
        assert pending is not None
        pending.result()
    assert [d.host for d in seen] == ["b", "c", "d"]
    assert peak == 2
    release["a"].set()
    fanout.wait()
    assert [d.host for d in seen] == ["b", "c", "d", "a"]
    assert not any(d.reachable for d in seen)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_an_interrupt_ends_the_hosts_being_collected(tmp_path: Path, silent_port: int) -> None:
    """Ctrl-C while a host hangs (its timeout an hour): the run ends as pytest's interrupted run
    does, and no ssh process is left behind."""
    inv = inventory(tmp_path, {"hung": silent_port})
    inv.write_text(inv.read_text().replace("walguard_connect_timeout_s: 2",
                                           "walguard_connect_timeout_s: 3600"))  # fmt: skip
    # Ctrl-C comes from a terminal. A test run started as a background job (as CI runners and
    # `cmd &` in a script start it) has SIGINT ignored, which the audit would inherit, and a
    # Python started with SIGINT ignored never raises KeyboardInterrupt: restore the default.
    proc = subprocess.Popen(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inv),
         "--report-root", str(tmp_path / "reports")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    port = f"-p\0{silent_port}\0"
    for _ in range(3000):  # until its ssh master is connecting (at most a minute)
        if _processes_mentioning(port):
            break
        threading.Event().wait(0.02)
    assert _processes_mentioning(port), "no ssh process was started"
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:  # a run that did not end is not left behind, nor its ssh processes
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        left = _processes_mentioning(port)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 2, out.decode(errors="replace")  # pytest's "interrupted"
    assert left == []
