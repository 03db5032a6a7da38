"""`down` leaves nothing behind, a warm `up` brings it all back; bad callers get one sentence.

Named so that it runs after the other lab modules: it takes the lab down and up again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.support import Lab
from walguard.lab import settings

pytestmark = pytest.mark.lab


def _leftovers() -> list[str]:
    found = []
    mounts = Path("/proc/self/mountinfo").read_text()
    if str(settings.STATE_DIR) in mounts:
        found.append("mounts under the lab state directory")
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    if str(settings.STATE_DIR) in loops:
        found.append(f"loop devices: {loops.strip()}")
    links = os.listdir("/sys/class/net")
    found += [f"link {n}" for n in links if n == settings.BRIDGE or n.startswith(("vb-db", "wgz"))]
    netns = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
    found += [f"netns {n}" for n in netns if n.startswith("wg-zone")]
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    found += [f"process {p}" for p in procs.splitlines() if "systemd-nspawn" in p and "-M db" in p]
    found += [f"process {p}" for p in procs.splitlines() if "qemu-system" in p and "walguard" in p]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    if "walguard_lab" in tables:
        found.append("nftables table walguard_lab")
    return found


def test_down_leaves_nothing_and_up_comes_back(lab: Lab) -> None:
    try:
        lab.walguard("lab", "down")
        assert _leftovers() == []
        assert not settings.INVENTORY_PATH.exists()
        status = lab.walguard("lab", "status", check=False)
        assert status.returncode == 8  # walguard.exit_codes: the lab command failed
    finally:
        # The later lab tests need it back, whatever happened above.
        lab.walguard("lab", "up", "--hosts", str(len(lab.hosts)))
    for host in lab.hosts:
        assert lab.ssh(host, "hostname").stdout.strip() == host.name
    assert settings.INVENTORY_PATH.exists()


def test_down_and_up_again(lab: Lab) -> None:
    # Teardown races (a namespace's veth vanishing under us) show up only now and then: a
    # second cycle after test_down_leaves_nothing_and_up_comes_back's (each costs the suite
    # half a minute; every CI run adds its two).
    for _ in range(1):
        lab.walguard("lab", "down")
        assert _leftovers() == []
        lab.walguard("lab", "up", "--hosts", str(len(lab.hosts)))


def _as_nobody(
    args: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            sys.executable,
            "-m",
            "walguard.cli",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=settings.PROJECT_ROOT,
    )


def test_not_root_gets_one_clear_sentence() -> None:
    done = _as_nobody(["lab", "up"])
    assert done.returncode == 8  # the lab command failed
    assert done.stderr.strip() == (
        "walguard: the lab needs root (it creates containers, mounts and network namespaces): "
        "run it with sudo or as root"
    )


def test_a_missing_tool_gets_one_clear_sentence(tmp_path: Path) -> None:
    # A PATH with nothing on it: every external tool is missing.
    env = {**os.environ, "PATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "lab", "up"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 8  # the lab command failed
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("walguard: missing tools: debootstrap, ")
