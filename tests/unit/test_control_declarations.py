"""The shipped controls' declarations: what each reads, its paired script and the lab scenarios
that must make it FAIL; and README.md's table of controls, made from them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from walguard.controls import REGISTRY, SCRIPTS, load_all, markdown_table, table_span
from walguard.facts.sections import known_read
from walguard.paths import REMEDIATION_DIR

REPO = Path(__file__).resolve().parents[2]
# Their facts come from no collector section or PostgreSQL key: the zone probes' connection
# attempts (WG-NET-004) and the active probe's WAL switch (WG-ACT-006).
READ_ELSEWHERE = {"WG-NET-004", "WG-ACT-006"}
# No nspawn lab scenario breaks these: the lab's seed already fails WG-ARC-004, WG-ACT-006 runs
# only with --active-probe, a journal error is also what other breaks cause (WG-SYS-004), and the
# WG-SEL controls are judged on the SELinux guest, whose seed breaks them all.
NO_SCENARIO = {
    "WG-RST-002",  # an RPO is minutes: its own lab test waits one out
    "WG-RST-003",  # the restore drill (opt-in): its own lab test breaks it
    "WG-RST-004",
    "WG-ARC-004",
    "WG-ACT-006",
    "WG-SYS-004",
    *(f"WG-SEL-00{n}" for n in range(1, 7)),
}


def test_a_declaration_is_what_the_tests_read() -> None:
    load_all()
    meta = REGISTRY["WG-DIR-004"]
    assert meta.reads == ("archive_stat",)
    assert meta.scenarios == ("archive-dir-missing", "archive-dir-mode-0777")
    assert meta.remediation == "WG-DIR-004.sh"
    assert SCRIPTS["WG-DIR-004"].path == REMEDIATION_DIR / "WG-DIR-004.sh"
    assert REGISTRY["WG-ARC-001"].reads == ("postgresql.settings.archive_mode",)


def test_every_shipped_control_declares_what_it_reads() -> None:
    controls = load_all()
    assert {cid for cid, c in controls.items() if not c.reads} == READ_ELSEWHERE
    for cid, c in controls.items():
        assert all(known_read(name) for name in c.reads), cid


def test_every_declared_scenario_is_a_lab_scenario() -> None:
    controls = load_all()
    lab = {p.stem for p in (REPO / "lab" / "scenarios").glob("*.sh")}
    for cid, c in controls.items():
        assert set(c.scenarios) <= lab, (cid, set(c.scenarios) - lab)
    assert {cid for cid, c in controls.items() if not c.scenarios} == NO_SCENARIO


def test_every_declared_script_is_paired_and_checked() -> None:
    controls = load_all()
    assert set(SCRIPTS) == {cid for cid, c in controls.items() if c.remediation}
    for cid, script in SCRIPTS.items():
        assert (script.control, script.path.name) == (cid, controls[cid].remediation)
        assert script.disruptive == controls[cid].disruptive


def test_the_readme_table_is_made_from_the_declarations() -> None:
    table = markdown_table(list(load_all().values()))
    readme = (REPO / "README.md").read_text()
    start, end = table_span(readme)
    assert readme[start:end] == table, (
        "README.md's table of controls differs from the declarations: write it again with "
        "`python -m walguard.controls --readme README.md`"
    )
    # Opt-in last within its area; a `|` in a cell does not end it.
    rows = [line.split(" | ")[0][2:] for line in table.splitlines()[2:]]
    assert rows.index("WG-ACT-006") == rows.index("WG-RST-001") - 1
    assert "`test -f … \\|\\| cp` does not" in table


def _module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "walguard.controls", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )


def test_the_module_prints_the_table_and_writes_it_into_a_readme(tmp_path: Path) -> None:
    table = markdown_table(list(load_all().values()))
    printed = _module("--markdown")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == table
    # A table gone stale (a row less, one changed) is replaced; the text around it stays.
    readme = tmp_path / "README.md"
    stale = table.replace("| WG-ARC-002 | critical | wal_level is replica or logical |\n", "")
    readme.write_text(f"# walguard\n\n### Controls\n\n{stale.replace('high', 'low', 1)}\nAfter.\n")
    assert _module("--readme", str(readme)).returncode == 0
    assert readme.read_text() == f"# walguard\n\n### Controls\n\n{table}\nAfter.\n"
    (tmp_path / "other.md").write_text("no table here\n")
    refused = _module("--readme", str(tmp_path / "other.md"))
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        f"{tmp_path / 'other.md'}: has no table of controls to replace",
    )
    assert _module().returncode == 2
