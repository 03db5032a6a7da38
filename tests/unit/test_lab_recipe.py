"""The lab's pure parts: recipe hashing, mirror discovery, names and addresses, scenario headers."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from walguard.lab import image, manage, settings
from walguard.lab.scenarios import all_scenarios


def _recipe(tmp_path: Path) -> Path:
    (tmp_path / "files").mkdir()
    (tmp_path / "packages.txt").write_text("# comment\nsystemd\n\npostgresql-15\n")
    (tmp_path / "setup.sh").write_text("#!/bin/sh\ntrue\n")
    return tmp_path


def test_recipe_hash_changes_with_content_and_executable_bit(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path)
    first = image.recipe_hash(recipe)
    assert image.recipe_hash(recipe) == first
    (recipe / "setup.sh").chmod(0o755)
    second = image.recipe_hash(recipe)
    assert second != first
    (recipe / "setup.sh").chmod(0o775)  # group write bit: not kept by git, not part of the hash
    assert image.recipe_hash(recipe) == second
    (recipe / "files" / "new.conf").write_text("x\n")
    assert image.recipe_hash(recipe) != second


def test_packages_skip_comments_and_blanks(tmp_path: Path) -> None:
    assert image.packages(_recipe(tmp_path)) == ["systemd", "postgresql-15"]


def test_the_shipped_recipe_has_what_the_lab_needs() -> None:
    needed = {"systemd", "openssh-server", "sudo", "postgresql-15", "nftables"}
    needed |= {"pgbackrest", "barman-cli"}  # archiving tools the pgbackrest-* scenarios use
    assert needed <= set(image.packages())
    assert "auditd" not in image.packages()  # no kernel audit inside nspawn


def test_host_names_and_addresses() -> None:
    assert settings.host_names(3) == ["db1", "db2", "db3"]
    assert settings.host_address("db1") == "10.231.0.11"
    assert settings.host_address("db12") == "10.231.0.22"
    with pytest.raises(ValueError):
        settings.host_address("web1")


def test_every_scenario_documents_what_it_breaks_and_what_to_observe() -> None:
    scenarios = all_scenarios()
    assert len(scenarios) >= 15
    for sc in scenarios.values():
        assert sc.breaks, sc.name
        assert sc.observe, sc.name
        text = sc.path.read_text()
        assert "set -euo pipefail" in text, sc.name


def test_scenario_header_spans_continuation_lines(tmp_path: Path) -> None:
    (tmp_path / "x.sh").write_text(
        "#!/bin/bash\n# breaks: one thing\n#   and its detail.\n# observe: the effect.\nset -e\n"
    )
    sc = all_scenarios(tmp_path)["x"]
    assert sc.breaks == "one thing and its detail."
    assert sc.observe == "the effect."


def test_replication_between_lab_hosts_only() -> None:
    """The standby-of-db1 scenario streams from db1: the image lets the replication role in from
    the lab hosts' subnet, by password, and the firewall still refuses zone-b."""
    setup = (settings.RECIPE_DIR / "setup.sh").read_text()
    assert "host replication replicator 10.231.0.0/24 scram-sha-256" in setup
    assert "CREATE ROLE replicator LOGIN REPLICATION PASSWORD" in setup
    nft = (settings.RECIPE_DIR / "files/etc/nftables.conf").read_text()
    accept = next(ln for ln in nft.splitlines() if "5432" in ln and "accept" in ln)
    assert "10.231.0.0/24" in accept and "10.231.1.0/24" in accept
    assert settings.ZONES[1].subnet not in nft


def test_scenarios_learn_db1_address_from_the_lab_settings() -> None:
    assert manage.scenario_env() == [f"WALGUARD_LAB_DB1={settings.host_address('db1')}"]
    text = (settings.SCENARIO_DIR / "standby-of-db1.sh").read_text()
    assert "WALGUARD_LAB_DB1" in text


def test_known_hosts_keeps_a_host_that_is_rebooting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guest's boot rewrites known_hosts while a database host may be mid-reset (stopped,
    not yet started again): that host's key must stay, or every later SSH to it fails."""
    monkeypatch.setattr(settings, "STATE_DIR", tmp_path)
    for name, key in (("db1", "AAAAone"), ("db3", "AAAAthree")):
        (tmp_path / "hosts" / name).mkdir(parents=True)
        (tmp_path / "hosts" / name / "host_key.pub").write_text(f"ssh-ed25519 {key} root@{name}\n")
    (tmp_path / "hosts" / "db9").mkdir()  # being made by `up`: no key yet
    hosts = manage.keyed_hosts()
    assert [h.name for h in hosts] == ["db1", "db3"]
    assert not any(h.running() for h in hosts)
    path = manage.inventory.write_known_hosts(hosts)
    lines = path.read_text().splitlines()
    assert [line.split()[2] for line in lines] == ["AAAAone", "AAAAthree"]
    assert lines[1].startswith("db3,")


@pytest.mark.parametrize(
    ("names", "refused"),
    [
        ([], "none named"),
        (["db1"], "not db1$"),
        (["db4", "db2"], "not db2$"),
        (["probe-a"], "not probe-a$"),
        (["db4", "../x"], r"not \.\./x$"),
    ],
)
def test_hosts_beside_the_lab_are_never_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, names: list[str], refused: str
) -> None:
    """A wrong name is refused before anything is touched (no root needed to be told)."""
    path = tmp_path / "lab.yml"
    hosts = {name: {"ansible_host": settings.host_address(name)} for name in ("db1", "db2", "db3")}
    path.write_text(yaml.safe_dump({"all": {"children": {"lab": {"hosts": hosts}}}}))
    monkeypatch.setattr(settings, "INVENTORY_PATH", path)
    assert manage.inventory.listed_hosts(path) == {"db1", "db2", "db3"}
    with pytest.raises(manage.LabError, match=f"^hosts beside the lab.*{refused}"):
        manage.boot_beside(names, tmp_path / "beside.yml")
    assert not (tmp_path / "beside.yml").exists()
