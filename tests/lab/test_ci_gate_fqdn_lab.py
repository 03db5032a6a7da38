"""The shipped CI gates with FQDN host names, on the lab: an inventory whose hosts are named as
a bank names them (db1.lab.example.internal), a merge request that changes one host's host_vars
file, the pipeline's own lines (from examples/gitlab-ci.yml and examples/github-actions.yml)
computing the --limit, and walguard auditing exactly that host."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.lab.support import Lab, audit
from walguard.lab import settings

pytestmark = pytest.mark.lab

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOMAIN = "lab.example.internal"


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.internal",
         *args], capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def _estate(repo: Path, lab: Lab) -> None:
    """inventories/prod as a bank keeps it: FQDN hosts, one host_vars file each."""
    lab_doc = yaml.safe_load(settings.INVENTORY_PATH.read_text())
    prod = repo / "inventories" / "prod"
    (prod / "host_vars").mkdir(parents=True)
    hosts = {}
    for host in lab.hosts:
        fqdn = f"{host.name}.{DOMAIN}"
        hosts[fqdn] = None
        (prod / "host_vars" / f"{fqdn}.yml").write_text(f"ansible_host: {host.address}\n")
    lab_doc["all"]["children"]["lab"]["hosts"] = hosts  # its group vars stay
    (prod / "hosts.yml").write_text(yaml.safe_dump(lab_doc))


@pytest.mark.parametrize("pipeline", ["gitlab-ci.yml", "github-actions.yml"])
def test_a_change_to_one_fqdn_hosts_vars_audits_that_host(
    lab: Lab, tmp_path: Path, pipeline: str
) -> None:
    repo = tmp_path / "estate"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    _estate(repo, lab)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "estate")
    _git(repo, "checkout", "-qb", "change")
    changed_host = f"{lab.hosts[1].name}.{DOMAIN}"
    vars_file = repo / "inventories" / "prod" / "host_vars" / f"{changed_host}.yml"
    vars_file.write_text(vars_file.read_text() + "walguard_rpo_minutes: 10\n")
    _git(repo, "commit", "-qam", "tighter RPO")
    # The pipeline's own way from the changed files to --limit, as it stands in the example.
    text = (EXAMPLES / pipeline).read_text()
    (sed,) = re.findall(r"(sed -n -E (?:-e '[^']*' ?)+)", text)
    changed = _git(repo, "diff", "--name-only", "main...HEAD", "--", "inventories/prod")
    limit = subprocess.run(
        ["/bin/sh", "-c", f"{sed} | sort -u | paste -sd, -"],
        input=changed, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert limit == changed_host
    result = audit(tmp_path, "--limit", limit, "-k", "WG-ARC-001",
                   inventory=repo / "inventories" / "prod" / "hosts.yml")  # fmt: skip
    assert result.exit_status == 0, result.stdout + result.stderr
    assert list(result.doc["hosts"]) == [changed_host]
    assert result.doc["hosts"][changed_host]["reachable"] is True
