"""The lab audited through other inventory sources: inventories/lab.yml rendered as Ansible INI
(read by walguard) and as a dynamic inventory script (read by ansible-inventory), and the YAML
inventory with Vault-encrypted become passwords beside it (read by ansible-inventory with a
password file). Each must give the targets and the verdicts of the plain YAML run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.inventory_renderings import to_ini, write_script
from tests.lab.support import Audit, Lab, audit
from walguard.inventory.ansible import find_ansible_inventory
from walguard.inventory.load import Target, VaultOptions, load_inventory
from walguard.lab import settings

pytestmark = pytest.mark.lab

INLINE_SECRET = "Lab-Inline-Become-1"
FILE_SECRET = "Lab-File-Become-2"


def _targets(targets: list[Target]) -> dict[str, tuple[Any, ...]]:
    return {
        t.name: (t.address, t.port, t.user, t.key_file, t.become, t.groups, dict(t.vars),
                 t.policy, t.connect, t.ssh_args)
        for t in targets
    }  # fmt: skip


def _verdicts(result: Audit) -> dict[str, dict[str, str]]:
    return {
        host: {c["control"]: c["result"] for c in info["controls"]}
        for host, info in result.doc.get("hosts", {}).items()
    }


def _ansible_tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    assert found, f"{name} not found: ansible-core is in requirements.txt (the ansible extra)"
    return found


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    assert find_ansible_inventory() is not None, "ansible-core is in requirements.txt"
    doc = yaml.safe_load(settings.INVENTORY_PATH.read_text())
    ini = tmp_path / "lab.ini"
    ini.write_text(to_ini(doc))
    script = write_script(doc, tmp_path / "lab-inventory", calls=tmp_path / "script-calls")
    return {"ini": ini, "script": script}


@pytest.fixture
def vaulted(tmp_path: Path) -> tuple[Path, Path]:
    """lab.yml with become passwords in host_vars/: inline-encrypted for db1, a whole
    Vault-encrypted file for db2; and the password file."""
    root = tmp_path / "vaulted"
    (root / "host_vars").mkdir(parents=True)
    inventory = root / "lab.yml"
    shutil.copy(settings.INVENTORY_PATH, inventory)
    password = root / "vault-pass"
    password.write_text("lab vault password\n")
    os.chmod(password, 0o600)
    vault = _ansible_tool("ansible-vault")
    inline = subprocess.run(
        [vault, "encrypt_string", f"--vault-password-file={password}",
         "--name", "ansible_become_password", INLINE_SECRET],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    (root / "host_vars" / "db1.yml").write_text(inline)
    db2 = root / "host_vars" / "db2.yml"
    db2.write_text(f"ansible_become_password: {FILE_SECRET}\n")
    subprocess.run(
        [vault, "encrypt", f"--vault-password-file={password}", str(db2)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return inventory, password


def test_every_source_reads_as_the_yaml_inventory(
    sources: dict[str, Path], vaulted: tuple[Path, Path]
) -> None:
    want = _targets(load_inventory(settings.INVENTORY_PATH))
    for way, path in sources.items():
        assert _targets(load_inventory(path)) == want, way
    inventory, password = vaulted
    got = load_inventory(inventory, VaultOptions(password_files=(str(password),)))
    for target in got:
        assert INLINE_SECRET not in repr(target) and FILE_SECRET not in repr(target)
    without_secrets = {
        name: (*fields[:6], {k: v for k, v in fields[6].items() if k != "ansible_become_password"},
               *fields[7:])
        for name, fields in _targets(got).items()
    }  # fmt: skip
    assert without_secrets == want


def test_the_lab_audited_through_ini_and_a_script(
    lab: Lab, tmp_path: Path, sources: dict[str, Path]
) -> None:
    reference = audit(tmp_path)
    assert reference.exit_status == 0, reference.stdout + reference.stderr
    assert set(reference.doc["hosts"]) == {h.name for h in lab.hosts}
    for way, path in sources.items():
        result = audit(tmp_path, inventory=path)
        assert result.exit_status == reference.exit_status, way + result.stdout + result.stderr
        assert _verdicts(result) == _verdicts(reference), way
    # With xdist the workers take the controller's answer: the script runs once per audit.
    calls = tmp_path / "script-calls"
    calls.unlink()
    result = audit(tmp_path, "-n", "2", inventory=sources["script"])
    assert _verdicts(result) == _verdicts(reference), result.stdout + result.stderr
    assert calls.read_text().splitlines() == ["--list"]


def test_the_lab_audited_with_vaulted_become_passwords(
    lab: Lab, tmp_path: Path, vaulted: tuple[Path, Path]
) -> None:
    inventory, password = vaulted
    reference = audit(tmp_path)
    result = audit(tmp_path, f"--vault-password-file={password}", inventory=inventory)
    assert result.exit_status == reference.exit_status, result.stdout + result.stderr
    assert _verdicts(result) == _verdicts(reference)
    # Nothing the run wrote or said holds a decrypted value.
    written = [p for p in tmp_path.glob("reports-*/**/*") if p.is_file()]
    assert written
    for text in [result.stdout, result.stderr, *(p.read_bytes().decode("utf-8", "replace")
                                                 for p in written)]:  # fmt: skip
        assert INLINE_SECRET not in text and FILE_SECRET not in text
    # Without the password the inventory is a usage error, before any host is touched.
    refused = audit(tmp_path, inventory=inventory)
    assert refused.exit_status == 4
    assert "Ansible Vault values are not supported by walguard's own reader" in refused.stderr
