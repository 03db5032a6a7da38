"""--limit: Ansible's host patterns over the inventory's hosts and groups, and a limit that names
nothing is an error, never an audit of less than was asked for."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from walguard.inventory.limit import LimitError, matching, select, terms
from walguard.inventory.load import Target, load_inventory

REPO = Path(__file__).resolve().parents[2]

INVENTORY = """\
all:
  children:
    production:
      children:
        site_a:
          hosts:
            db01.site-a: {ansible_host: 192.0.2.11}
            db02.site-a: {ansible_host: 192.0.2.12}
        site_b:
          hosts:
            db01.site-b: {ansible_host: 192.0.2.21}
    staging:
      hosts:
        stg1: {ansible_host: 192.0.2.31}
        stg2: {ansible_host: 192.0.2.32}
    replicas:
      hosts:
        db02.site-a:
        stg2:
  hosts:
    lonely: {ansible_host: 192.0.2.41}
"""


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> list[Target]:
    path = tmp_path_factory.mktemp("inv") / "inventory.yml"
    path.write_text(INVENTORY)
    return list(load_inventory(path))


def names(hosts: list[Target], pattern: str) -> list[str]:
    return [h.name for h in select(hosts, pattern)]


def test_host_names_and_groups(hosts: list[Target]) -> None:
    assert names(hosts, "stg1") == ["stg1"]
    assert names(hosts, "staging") == ["stg1", "stg2"]
    # A parent group holds its children's hosts, in inventory order.
    assert names(hosts, "production") == ["db01.site-a", "db02.site-a", "db01.site-b"]
    assert names(hosts, "site_b,stg1") == ["db01.site-b", "stg1"]
    # Ansible's implicit group of hosts in no other group.
    assert names(hosts, "ungrouped") == ["lonely"]
    assert len(names(hosts, "all")) == len(names(hosts, "*")) == 6


def test_globs_and_regular_expressions(hosts: list[Target]) -> None:
    assert names(hosts, "db0*") == ["db01.site-a", "db02.site-a", "db01.site-b"]
    assert names(hosts, "*.site-b") == ["db01.site-b"]
    assert names(hosts, "stg[2-9]") == ["stg2"]
    # A glob over group names takes the groups' hosts too.
    assert names(hosts, "site_?") == ["db01.site-a", "db02.site-a", "db01.site-b"]
    # ~ is a regular expression matched at the start of the name, as Ansible's.
    assert names(hosts, "~db0[12]\\.site-a") == ["db01.site-a", "db02.site-a"]
    assert names(hosts, "~.*site-a") == ["db01.site-a", "db02.site-a"]
    with pytest.raises(LimitError):
        select(hosts, "~site-a")  # matched at the start, as re.match
    # Case matters, as in Ansible.
    with pytest.raises(LimitError):
        select(hosts, "STG1")


def test_exclusions_and_intersections_apply_after_the_union(hosts: list[Target]) -> None:
    assert names(hosts, "production,!site_a") == ["db01.site-b"]
    # Order does not matter: the ! terms exclude after every plain term is in.
    assert names(hosts, "!site_a,production") == ["db01.site-b"]
    assert names(hosts, "production,&replicas") == ["db02.site-a"]
    assert names(hosts, "all,!production,!lonely") == ["stg1", "stg2"]
    # Exclusions alone start from every host.
    assert names(hosts, "!staging,!production") == ["lonely"]
    # An exclusion that matches nothing excludes nothing.
    assert names(hosts, "staging,!db99") == ["stg1", "stg2"]


def test_a_limit_file_lists_more_patterns(hosts: list[Target], tmp_path: Path) -> None:
    listed = tmp_path / "changed-hosts"
    listed.write_text("stg1\n\n  db01.site-b  \n!lonely\n")
    assert names(hosts, f"@{listed}") == ["db01.site-b", "stg1"]
    assert terms(f"@{listed},lonely") == ["stg1", "db01.site-b", "!lonely", "lonely"]
    with pytest.raises(LimitError, match="cannot read"):
        select(hosts, f"@{tmp_path / 'missing'}")


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("db99", "db99 matches no host or group"),
        # A typo among good names is an error too: the audit would cover less than asked.
        ("stg1,stg3", "stg3 matches no host or group"),
        ("production,&staging", "leaves no host to audit"),
        ("all,!all", "leaves no host to audit"),
        ("production,&nothing*", "nothing* matches no host or group"),
        (" , ", "no host pattern"),
        ("~db[", "not a regular expression"),
    ],
)
def test_a_limit_that_names_nothing_is_an_error(
    hosts: list[Target], pattern: str, message: str
) -> None:
    with pytest.raises(LimitError, match=message.replace("*", r"\*").replace("[", r"\[")):
        select(hosts, pattern)


def test_a_name_that_is_a_group_and_a_host_takes_the_group(tmp_path: Path) -> None:
    path = tmp_path / "inventory.ini"
    path.write_text("[db1]\ndb2 ansible_host=192.0.2.2\n\n[other]\ndb1 ansible_host=192.0.2.1\n")
    hosts = load_inventory(path)
    # As Ansible: a pattern that names a group is not also tried as a host name.
    assert [h.name for h in matching(hosts, "db1")] == ["db2"]


def test_an_unmatched_limit_stops_the_audit_before_any_host(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(INVENTORY)
    root = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(inventory),
         "--limit", "staging,stg9", "--report-root", str(root)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    assert "stg9 matches no host or group" in done.stderr
    assert not root.exists()  # no run directory: nothing was started
