"""The user's own controls directories (--checks DIR, walguard_checks_dirs): loaded beside the
shipped controls, paired with their scripts, and every mistake a usage error naming its file
before any host is touched."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from walguard import controls
from walguard.audit.extra_checks import from_inventory
from walguard.controls import ControlsError, load_all
from walguard.inventory.load import load_inventory
from walguard.paths import CHECKS_DIR, REMEDIATION_DIR
from walguard.report.results_json import SCHEMA_PATH

REPO = Path(__file__).resolve().parents[2]

# Two documentation addresses: nothing answers there, and a usage error must come before trying.
INVENTORY = """\
all:
  vars:
    walguard_connect_timeout_s: 1
  hosts:
    h1: {ansible_host: 192.0.2.1}
    h2: {ansible_host: 192.0.2.2}
"""


def control_file(
    cid: str, *, remediation: str | None = None, reads: str = "pg: Postgres", declares: str = ""
) -> str:
    extra = f", remediation={remediation!r}" if remediation else ""
    extra += f", {declares}" if declares else ""
    return textwrap.dedent(
        f'''\
        from walguard.controls import control, fail
        from walguard.facts.host import Postgres


        @control("{cid}", "archive_timeout is at most 300 s", severity="medium",
                 rationale="the bank's own rule"{extra})
        def test_archive_timeout_at_most_300s({reads}) -> None:
            seconds = int(pg.setting("archive_timeout").setting)
            if seconds == 0 or seconds > 300:
                fail(f"archive_timeout is {{seconds}} s")
        '''
    )


def user_dir(base: Path, files: dict[str, str], scripts: dict[str, str] | None = None) -> Path:
    checks = base / "checks"
    checks.mkdir(parents=True)
    for name, text in files.items():
        (checks / name).write_text(text)
    for name, text in (scripts or {}).items():
        (base / "remediation").mkdir(exist_ok=True)
        (base / "remediation" / name).write_text(text)
    return checks


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    """Each test's controls leave the process's registry as they found it."""
    load_all()
    registries = (controls.REGISTRY, controls.FUNCTIONS, controls.SOURCES, controls.SCRIPTS)
    saved = tuple(dict(r) for r in registries)
    modules, path = set(sys.modules), list(sys.path)
    yield
    for live, before in zip(registries, saved, strict=True):
        live.clear()
        live.update(before)  # type: ignore[attr-defined]
    for name in set(sys.modules) - modules:
        del sys.modules[name]
    sys.path[:] = path


def test_user_controls_join_the_shipped_ones(tmp_path: Path) -> None:
    checks = user_dir(tmp_path / "bank", {"test_bank.py": control_file("WG-BNK-001")})
    shipped = set(load_all())
    found = load_all(CHECKS_DIR, [checks])
    assert set(found) - shipped == {"WG-BNK-001"}
    assert controls.SOURCES["WG-BNK-001"] == checks.resolve() / "test_bank.py"
    assert controls.SOURCES["WG-ARC-001"].parent == CHECKS_DIR.resolve()
    # Loading again (as pytest imports the same files) changes nothing.
    assert load_all(CHECKS_DIR, [checks]) == found


@pytest.mark.parametrize(
    ("files", "message"),
    [
        # The shipped control's id: named with both files.
        (
            {"test_bank.py": control_file("WG-ARC-001")},
            r"test_bank\.py: cannot import it: ValueError: control id WG-ARC-001 is already used "
            r"for another control in .*checks/test_archive_settings\.py",
        ),
        (
            {"test_bank.py": "import no_such_module_anywhere\n"},
            r"test_bank\.py: cannot import it: ModuleNotFoundError: No module named "
            "'no_such_module_anywhere'",
        ),
        ({"test_bank.py": "def broken(:\n"}, r"test_bank\.py: cannot import it: SyntaxError"),
        (
            {"test_bank.py": control_file("BANK-001")},
            r"control id 'BANK-001': a control id is WG-, a three-letter area",
        ),
        (
            {"test_bank.py": control_file("WG-BANK-1")},
            r"control id 'WG-BANK-1': a control id is WG-, a three-letter area",
        ),
        # pytest imports controls files by name: one the shipped controls have is refused.
        (
            {"test_archive_settings.py": control_file("WG-BNK-001")},
            r"test_archive_settings\.py: .*checks has a controls file of that name",
        ),
        ({"helpers.py": "X = 1\n"}, "holds no test_\\*.py file"),
    ],
)
def test_a_bad_controls_file_is_named(tmp_path: Path, files: dict[str, str], message: str) -> None:
    checks = user_dir(tmp_path / "bank", files)
    with pytest.raises(ControlsError, match=message):
        load_all(CHECKS_DIR, [checks])


SCRIPT = "# control: WG-BNK-001\n# changes: archive_timeout\n# disruptive: no\nfinish\n"


@pytest.mark.parametrize(
    ("declares", "script", "message"),
    [
        (
            'reads=("archive_stats", "postgresql.archiver")',
            None,
            "control WG-BNK-001 reads archive_stats: neither a collector section nor a PostgreSQL "
            "fact",
        ),
        ('reads=("postgresql.archivers",)', None, "control WG-BNK-001 reads postgresql.archivers"),
        ('reads="archive_stat"', None, "control WG-BNK-001: reads is a list of names"),
        ('scenarios=("archive-gap", 7)', None, "control WG-BNK-001: scenarios is a list of names"),
        (
            'reads=("archive_stat", "archive_stat")',
            None,
            "control WG-BNK-001 names archive_stat twice in its reads",
        ),
        (
            'scenarios=("Archive_Gap",)',
            None,
            "control WG-BNK-001 has the scenario 'Archive_Gap': a scenario is named with "
            "lowercase letters, digits and '-'",
        ),
        ('scenarios=("archive-gap-",)', None, "has the scenario 'archive-gap-'"),
        (
            'remediation="WG-BNK-001.sh", disruptive=True',
            SCRIPT,
            "its header says `# disruptive: no`, but control WG-BNK-001 is declared with "
            "disruptive=True",
        ),
        (
            'remediation="WG-BNK-001.sh"',
            SCRIPT.replace("# changes: archive_timeout\n", ""),
            "the header of control WG-BNK-001's script does not say what it changes",
        ),
    ],
)
def test_a_declaration_that_names_what_does_not_exist_is_refused(
    tmp_path: Path, declares: str, script: str | None, message: str
) -> None:
    """As the control registers: one line naming the file and the control."""
    checks = user_dir(
        tmp_path / "bank",
        {"test_bank.py": control_file("WG-BNK-001", declares=declares)},
        {"WG-BNK-001.sh": script} if script else None,
    )
    with pytest.raises(ControlsError) as caught:
        load_all(CHECKS_DIR, [checks])
    text = str(caught.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith(str(checks.resolve() / "test_bank.py")) or text.startswith(
        str(tmp_path / "bank" / "remediation" / "WG-BNK-001.sh")
    )
    assert "WG-BNK-001" not in controls.REGISTRY


def test_a_user_control_may_leave_out_reads_and_scenarios(tmp_path: Path) -> None:
    checks = user_dir(tmp_path / "bank", {"test_bank.py": control_file("WG-BNK-001")})
    found = load_all(CHECKS_DIR, [checks])["WG-BNK-001"]
    assert (found.reads, found.scenarios, found.detail) == ((), (), "")
    declared = user_dir(
        tmp_path / "other",
        {
            "test_other.py": control_file(
                "WG-BNK-002",
                declares='reads=("postgresql.settings.archive_timeout",), '
                'scenarios=("archive-timeout-off",)',
            )
        },
    )
    found = load_all(CHECKS_DIR, [declared])["WG-BNK-002"]
    assert found.reads == ("postgresql.settings.archive_timeout",)
    assert found.scenarios == ("archive-timeout-off",)


def test_two_user_directories_may_not_define_the_same_id(tmp_path: Path) -> None:
    one = user_dir(tmp_path / "one", {"test_one.py": control_file("WG-BNK-001")})
    two = user_dir(tmp_path / "two", {"test_two.py": control_file("WG-BNK-001")})
    with pytest.raises(ControlsError, match=r"two/checks/test_two\.py: .*one/checks/test_one\.py"):
        load_all(CHECKS_DIR, [one, two])


def test_control_ids_are_what_results_json_allows() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["$defs"]["control_id"]["pattern"] == f"^{controls.CONTROL_ID.pattern}$"


def test_a_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ControlsError, match="no such directory"):
        load_all(CHECKS_DIR, [tmp_path / "nowhere"])


def test_a_user_control_pairs_with_the_script_beside_its_directory(tmp_path: Path) -> None:
    script = "# control: WG-BNK-001\n# changes: archive_timeout\n# disruptive: no\nfinish\n"
    checks = user_dir(
        tmp_path / "bank",
        {"test_bank.py": control_file("WG-BNK-001", remediation="WG-BNK-001.sh")},
        {"WG-BNK-001.sh": script},
    )
    load_all(CHECKS_DIR, [checks])
    found = controls.SCRIPTS
    assert found["WG-BNK-001"].path == tmp_path / "bank" / "remediation" / "WG-BNK-001.sh"
    assert found["WG-ARC-005"].path == REMEDIATION_DIR / "WG-ARC-005.sh"
    assert "WG-ARC-002" not in found  # no remediation named
    # A user's script runs with the shipped helpers, as the shipped ones do.
    text = found["WG-BNK-001"].text()
    assert text.startswith((REMEDIATION_DIR / "lib" / "common.sh").read_text())
    assert text.endswith(script)


def test_the_inventory_names_directories_for_the_whole_run(tmp_path: Path) -> None:
    inventory = tmp_path / "inv" / "hosts.yml"
    inventory.parent.mkdir()
    inventory.write_text(
        INVENTORY.replace("  vars:\n", "  vars:\n    walguard_checks_dirs: [bank]\n")
    )
    targets = load_inventory(inventory)
    # Relative to the inventory's directory, not to wherever walguard runs.
    assert from_inventory(targets, str(inventory)) == [tmp_path / "inv" / "bank"]
    assert from_inventory(load_inventory(_write(tmp_path, INVENTORY)), "x") == []
    differs = INVENTORY.replace("{ansible_host: 192.0.2.2}", "{ansible_host: 192.0.2.2, "
                                "walguard_checks_dirs: [other]}")  # fmt: skip
    with pytest.raises(ControlsError, match=r"differs between hosts \(unset on h1; \['other'\]"):
        from_inventory(load_inventory(_write(tmp_path, differs)), "x")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / f"inventory-{abs(hash(text))}.yml"
    path.write_text(text)
    return path


def _audit(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--report-root", str(tmp_path / "reports"),
         *args],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )  # fmt: skip


GOOD_SCRIPT = "# control: WG-BNK-001\n# changes: nothing\n# disruptive: no\nfinish\n"


@pytest.mark.parametrize(
    ("files", "scripts", "message"),
    [
        ({"test_bank.py": control_file("WG-ARC-005")}, {}, "control id WG-ARC-005 is already used"),
        ({"test_bank.py": "raise RuntimeError('boom')\n"}, {}, "RuntimeError: boom"),
        (
            {"test_bank.py": control_file("WG-BNK-001", remediation="WG-BNK-001.sh")},
            {},
            "names the remediation script WG-BNK-001.sh, which is not in",
        ),
        (
            {"test_bank.py": control_file("WG-BNK-001", remediation="WG-BNK-001.sh")},
            {"WG-BNK-001.sh": GOOD_SCRIPT.replace("WG-BNK-001", "WG-BNK-002")},
            "its header names control WG-BNK-002, not WG-BNK-001",
        ),
        (
            {"test_bank.py": control_file("WG-BNK-001", reads="pg: Postgres, ledger: int")},
            {},
            "control WG-BNK-001 reads ledger, which no fact provides",
        ),
    ],
)
def test_a_bad_user_control_stops_the_audit_before_any_host(
    tmp_path: Path, files: dict[str, str], scripts: dict[str, str], message: str
) -> None:
    checks = user_dir(tmp_path / "bank", files, scripts)
    done = _audit(
        tmp_path, "--inventory", str(_write(tmp_path, INVENTORY)), "--checks", str(checks)
    )
    assert done.returncode == 4, done.stdout + done.stderr
    assert message in done.stderr
    assert str(checks / "test_bank.py") in done.stderr or "WG-BNK-001.sh" in done.stderr
    assert not (tmp_path / "reports").exists()  # nothing started


def test_a_missing_directory_from_the_inventory_stops_the_audit(tmp_path: Path) -> None:
    inventory = _write(
        tmp_path, INVENTORY.replace("  vars:\n", "  vars:\n    walguard_checks_dirs: [gone]\n")
    )
    done = _audit(tmp_path, "--inventory", str(inventory))
    assert done.returncode == 4, done.stdout + done.stderr
    assert f"controls directory {tmp_path / 'gone'}: no such directory" in done.stderr
    assert not (tmp_path / "reports").exists()


def test_user_controls_are_collected_with_their_ids(tmp_path: Path) -> None:
    """Collected as pytest collects a test path, each control's node id ending ::WG-ID[host],
    and counted among the run's controls (collection alone touches no host)."""
    checks = user_dir(tmp_path / "bank", {"test_bank.py": control_file("WG-BNK-001")})
    inventory = _write(tmp_path, INVENTORY)
    done = _audit(tmp_path, "--inventory", str(inventory), "--checks", str(checks),
                  "--collect-only", "-k", "WG-BNK-001 or WG-ARC-001")  # fmt: skip
    ids = [line.strip() for line in done.stdout.splitlines() if "::WG-" in line]
    assert ids == [
        "checks/test_archive_settings.py::WG-ARC-001[h1]",
        "checks/test_archive_settings.py::WG-ARC-001[h2]",
        "test_bank.py::WG-BNK-001[h1]",
        "test_bank.py::WG-BNK-001[h2]",
    ], done.stdout + done.stderr
    shipped = sum(1 for c in load_all().values() if not c.opt_in)
    assert f"4/{2 * (shipped + 1)} tests collected" in done.stdout  # --co writes no run
