"""The nightly audit's systemd units, as shipped in examples/systemd, on a real systemd: a lab
host's (this machine's PID 1 is not systemd). `systemd-analyze verify` accepts them without a
warning, and started with a stand-in for walguard they run it as the walguard user, with the
instance's environment file, the signing key as a credential only that user reads, a read-only
system and a private /tmp, writing only the reports directory; exit status 1 (controls failed)
leaves the unit successful, any other failure fails it. The host is reset afterwards."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.support import Lab
from walguard.lab.hosts import Host

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "examples" / "systemd"
INSTANCE = "prod"
SERVICE = f"walguard-audit@{INSTANCE}.service"
TIMER = f"walguard-audit@{INSTANCE}.timer"
REPORTS = f"/var/lib/walguard/reports/{INSTANCE}"
DUMMY_KEY = "not-a-real-key: the stand-in only reads it"

# Stands in for /usr/local/bin/walguard: records how the unit ran it, then exits as told.
STUB = """\
#!/bin/sh
out="$WALGUARD_REPORT_ROOT/stub-run"
{
  echo "user=$(id -un)"
  echo "args=$*"
  echo "report_root=$WALGUARD_REPORT_ROOT"
  echo "operator=$WALGUARD_OPERATOR"
  echo "tsa=$WALGUARD_TSA_URL"
  echo "key=$(cat "$WALGUARD_SIGN_KEY" 2>&1)"
  echo "cert_readable=$(test -r "$WALGUARD_SIGN_CERT" && echo yes || echo no)"
  echo "key_file_readable=$(test -r /etc/walguard/prod.sign.key && echo yes || echo no)"
  echo "etc_writable=$(touch /etc/walguard-stub 2>/dev/null && echo yes || echo no)"
  echo "home_listed=$(ls -A /home 2>/dev/null | wc -l)"
  echo "tmp_listed=$(ls -A /tmp | wc -l)"
  echo "no_new_privs=$(awk '/^NoNewPrivs/ {print $2}' /proc/self/status)"
  echo "exit=${WALGUARD_STUB_EXIT:-0}"
} > "$out"
exit "${WALGUARD_STUB_EXIT:-0}"
"""


def _root(host: Host, script: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return host.run_as_root(["sh", "-c", script], stdin)


def _install(host: Host, path: str, text: str, mode: str) -> None:
    q = shlex.quote(path)
    done = _root(host, f"install -D -m {mode} /dev/stdin {q}", text)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def installed(lab: Lab) -> Iterator[Host]:
    host = lab.hosts[2]
    try:
        for name in ("walguard-audit@.service", "walguard-audit@.timer", "walguard-drill@.timer"):
            _install(host, f"/etc/systemd/system/{name}", (UNITS / name).read_text(), "0644")
        sysusers = (UNITS / "walguard.sysusers.conf").read_text()
        _install(host, "/etc/sysusers.d/walguard.conf", sysusers, "0644")
        _install(host, "/usr/local/bin/walguard", STUB, "0755")
        _install(host, "/etc/walguard/prod.sign.key", DUMMY_KEY + "\n", "0600")
        _install(host, "/etc/walguard/prod.sign.pem", "not-a-real-certificate\n", "0600")
        _env(host, 0)
        # The lab's audit user is walguard already; sysusers only has to accept the file.
        done = _root(host, "systemd-sysusers --dry-run /etc/sysusers.d/walguard.conf && "
                     "systemctl daemon-reload")  # fmt: skip
        assert done.returncode == 0, done.stderr
        yield host
    finally:
        # Units, user state, a failed unit, journal lines: the reset takes them all.
        lab.walguard("lab", "scenario", "reset", host.name)


def _env(host: Host, exit_status: int) -> None:
    """The shipped example environment file, with the stand-in's exit status."""
    text = (UNITS / "prod.env").read_text() + f"WALGUARD_STUB_EXIT={exit_status}\n"
    _install(host, "/etc/walguard/prod.env", text, "0644")


def _show(host: Host, unit: str, *props: str) -> dict[str, str]:
    done = _root(host, f"systemctl show {unit} " + " ".join(f"-p {p}" for p in props))
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)


def _stub_run(host: Host) -> dict[str, str]:
    done = _root(host, f"cat {REPORTS}/stub-run")
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines())


def test_systemd_analyze_verify_accepts_the_units(installed: Host) -> None:
    done = _root(installed, f"systemd-analyze verify {SERVICE} {TIMER}")
    ours = [line for line in done.stderr.splitlines() if "walguard" in line]
    assert done.returncode == 0, done.stderr
    assert ours == []
    # The sandbox's exposure as systemd rates it (0 safest, 10 none), for the record.
    score = _root(installed, f"systemd-analyze security --no-pager {SERVICE} | tail -n 1")
    print(f"systemd-analyze security {SERVICE}: {score.stdout.strip()}")
    assert "Overall exposure level" in score.stdout


def test_failed_controls_leave_the_unit_successful(installed: Host) -> None:
    _env(installed, 1)
    done = _root(installed, f"systemctl start {SERVICE}")
    assert done.returncode == 0, done.stderr
    # (systemd forgets a successful oneshot's exit status once it is inactive: the stand-in
    # says which it exited with.)
    shown = _show(installed, SERVICE, "Result", "ActiveState")
    assert shown == {"Result": "success", "ActiveState": "inactive"}
    run = _stub_run(installed)
    assert run["exit"] == "1"
    assert run["user"] == "walguard"
    # The example environment file's inventory and extra options, word-split as documented.
    inventory = "/etc/walguard/prod/inventory.yml"
    metrics = "/var/lib/prometheus/node-exporter/walguard-prod.prom"
    assert run["args"] == (
        f"audit --inventory {inventory} --fail-on high --keep-runs 90 --metrics-file {metrics}"
    )
    assert run["report_root"] == REPORTS
    assert run["operator"] == f"walguard-audit@{INSTANCE}.timer"
    assert run["tsa"] == "http://tsa.example.internal/tsr"
    # The key reaches the run as a credential its user can read; the file itself stays root's.
    assert run["key"] == DUMMY_KEY
    assert run["cert_readable"] == "yes"
    assert run["key_file_readable"] == "no"
    # A read-only system, no /home, a private /tmp, no privilege gain.
    assert run["etc_writable"] == "no"
    assert run["home_listed"] == "0"
    assert run["tmp_listed"] == "0"
    assert run["no_new_privs"] == "1"
    owner = _root(installed, f"stat -c '%U %a' {REPORTS} /var/lib/walguard")
    assert owner.stdout.split("\n")[:2] == ["walguard 750", "walguard 750"]


@pytest.mark.parametrize("status", [4, 6, 7])
def test_an_audit_that_could_not_finish_fails_the_unit(installed: Host, status: int) -> None:
    _env(installed, status)
    done = _root(installed, f"systemctl start {SERVICE}")
    assert done.returncode != 0
    shown = _show(installed, SERVICE, "Result", "ExecMainStatus", "ActiveState")
    assert shown == {"Result": "exit-code", "ExecMainStatus": str(status), "ActiveState": "failed"}
    _root(installed, f"systemctl reset-failed {SERVICE}")


def test_the_timer_is_persistent_and_spread(installed: Host) -> None:
    done = _root(installed, f"systemctl enable --now {TIMER}")
    assert done.returncode == 0, done.stderr
    shown = _show(installed, TIMER, "Persistent", "RandomizedDelayUSec", "Unit", "ActiveState")
    assert shown == {
        "Persistent": "yes",
        "RandomizedDelayUSec": "1h",
        "Unit": SERVICE,
        "ActiveState": "active",
    }
    _root(installed, f"systemctl disable --now {TIMER}")


def test_the_weekly_drill_is_the_audit_service_with_the_drill(installed: Host) -> None:
    drill_timer, drill = (
        f"walguard-drill@{INSTANCE}.timer",
        f"walguard-audit@{INSTANCE}-drill.service",
    )
    done = _root(installed, f"systemd-analyze verify {drill_timer}")
    assert done.returncode == 0 and "walguard" not in done.stderr, done.stderr
    text = (UNITS / "prod-drill.env").read_text() + "WALGUARD_STUB_EXIT=0\n"
    _install(installed, f"/etc/walguard/{INSTANCE}-drill.env", text, "0644")
    for part in ("key", "pem"):
        _root(
            installed, f"ln -sf {INSTANCE}.sign.{part} /etc/walguard/{INSTANCE}-drill.sign.{part}"
        )
    done = _root(installed, f"systemctl enable --now {drill_timer}")
    assert done.returncode == 0, done.stderr
    shown = _show(installed, drill_timer, "Unit", "Persistent", "TimersCalendar")
    assert shown["Unit"] == drill and shown["Persistent"] == "yes", shown
    assert "Sun *-*-* 03:00:00" in shown["TimersCalendar"], shown
    done = _root(installed, f"systemctl start {drill}")
    assert done.returncode == 0, done.stderr
    run = _root(installed, f"cat /var/lib/walguard/reports/{INSTANCE}-drill/stub-run").stdout
    inventory = "/etc/walguard/prod/inventory.yml"
    metrics = "/var/lib/prometheus/node-exporter/walguard-prod-drill.prom"
    expected = (
        f"audit --inventory {inventory} --restore-drill -k RST --fail-on high --keep-runs 60 "
        f"--metrics-file {metrics}"
    )
    assert f"args={expected}\n" in run, run
    _root(installed, f"systemctl disable --now {drill_timer}")
