"""The benchmarks' own logic that needs no lab: which hosts they measure (never the probe hosts,
which the inventory marks with `walguard_zone`), the estates they write, and the floor's ssh
command line (walguard's own options for the host)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from compare import database_hosts  # noqa: E402
from controller_cpu import floor_argv, phases_of  # noqa: E402
from scale_inventory import scaled_inventory  # noqa: E402

from walguard.facts.transport import Connection  # noqa: E402
from walguard.inventory.load import load_inventory  # noqa: E402

LAB_LIKE = """\
all:
  vars:
    ansible_user: walguard
    ansible_port: 22
    ansible_ssh_private_key_file: /keys/id_ed25519
    walguard_known_hosts_file: /keys/known_hosts
    walguard_zones:
      zone-a:
        expect_postgres: true
      zone-b:
        expect_postgres: false
  children:
    lab:
      hosts:
        db1:
          ansible_host: 10.231.0.11
        db2:
          ansible_host: 10.231.0.12
      vars:
        walguard_postgres_service: postgresql@15-main.service
    probes:
      hosts:
        probe-a:
          ansible_host: 10.231.1.2
          walguard_zone: zone-a
        probe-b:
          ansible_host: 10.231.2.2
          walguard_zone: zone-b
"""


@pytest.fixture
def lab_like(tmp_path: Path) -> Path:
    path = tmp_path / "lab.yml"
    path.write_text(LAB_LIKE)
    return path


def test_probe_hosts_are_not_measured_as_database_hosts(lab_like: Path) -> None:
    assert [t.name for t in database_hosts(load_inventory(lab_like))] == ["db1", "db2"]


def test_an_inventory_of_probe_hosts_only_stops_the_benchmark(lab_like: Path) -> None:
    probes = [t for t in load_inventory(lab_like) if t.policy.zone is not None]
    with pytest.raises(SystemExit, match="no database host"):
        database_hosts(probes)


def test_scaled_inventory_puts_names_over_the_database_hosts(lab_like: Path, tmp_path: Path
                                                             ) -> None:  # fmt: skip
    out = tmp_path / "scaled.yml"
    names = scaled_inventory(lab_like, 5, out, ssh_args="-o KexAlgorithms=curve25519-sha256")
    assert names == ["db1-n1", "db2-n2", "db1-n3", "db2-n4", "db1-n5"]
    targets = {t.name: t for t in load_inventory(out)}
    assert sorted(targets) == sorted([*names, "probe-a", "probe-b"])
    assert [targets[n].address for n in names] == ["10.231.0.11", "10.231.0.12"] * 2 + [
        "10.231.0.11"
    ]
    for name in names:
        assert targets[name].policy.zone is None
        assert targets[name].policy.tls_name == name.split("-")[0]
        assert targets[name].policy.postgres_service == "postgresql@15-main.service"
        assert targets[name].ssh_args == ("-o", "KexAlgorithms=curve25519-sha256")
    assert targets["probe-a"].policy.zone == "zone-a"
    assert targets["probe-b"].ssh_args == ()


def test_the_floor_is_one_bare_connection_with_walguards_options(lab_like: Path) -> None:
    target = load_inventory(lab_like)[0]
    argv = floor_argv(target)
    assert argv[-3:] == ["--", "walguard@10.231.0.11", "true"]
    assert not any(a.startswith(("ControlPath=", "ControlMaster=")) for a in argv)
    conn = Connection(target)
    try:
        options = conn.options()
    finally:
        conn.close()
    at = next(i for i, a in enumerate(options) if a.startswith("ControlPath="))
    assert argv[1:-3] == options[: at - 1] + options[at + 1 :]
    for option in ("StrictHostKeyChecking=yes", "BatchMode=yes",
                   "UserKnownHostsFile=/keys/known_hosts"):  # fmt: skip
        assert option in argv
    assert argv[argv.index("-i") + 1] == "/keys/id_ed25519"


def test_phases_are_the_differences_between_marks() -> None:
    marks = [("collection starts", 1.0, 0.0), ("collection ends", 3.0, 10.0),
             ("writing starts", 5.0, 10.0), ("writing ends", 6.0, 10.0), ("end", 6.5, 10.0)]
    phases = phases_of(marks, cpu_s=17.0, python_s=7.0)  # fmt: skip
    assert [(p, s) for _, p, s in phases] == [(1.0, 0.0), (2.0, 10.0), (2.0, 0.0), (1.0, 0.0),
                                              (0.5, 0.0), (0.5, 0.0)]  # fmt: skip
    assert sum(p + s for _, p, s in phases) == 17.0
