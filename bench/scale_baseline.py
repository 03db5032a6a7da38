"""pytest's own cost for a run's shape: plain pytest tests, as many as the run judged, with the
same outcomes (passed, failed, skipped as walguard's NOT APPLICABLE is), the same output options
as `walguard audit` and a junit.xml. What an audit's controller spends beyond this is
walguard's."""

from __future__ import annotations

import resource
import subprocess
import sys
import textwrap
from pathlib import Path

TEST = '''
import pytest

OUTCOMES = {outcomes!r}


@pytest.mark.parametrize("i", range(len(OUTCOMES)))
def test_control(i):
    kind = OUTCOMES[i]
    if kind == "NOT APPLICABLE":
        pytest.skip("NOT APPLICABLE: not required on this host")
    if kind != "PASS":
        raise AssertionError(f"{{kind}}: the archive directory is mode 0777")
'''


def pytest_cost(mix: dict[str, int], work: Path) -> float:
    """CPU seconds (user + system) of plain pytest running tests with these outcome counts."""
    outcomes = [kind for kind, count in sorted(mix.items()) for _ in range(count)]
    directory = work / f"baseline-{len(outcomes)}"
    directory.mkdir(exist_ok=True)
    (directory / "test_baseline.py").write_text(textwrap.dedent(TEST.format(outcomes=outcomes)))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "pytest", str(directory), "-q", "--tb=no", "-rN",
         "-p", "no:cacheprovider", "--rootdir", str(directory), "-c", "/dev/null",
         "--junitxml", str(directory / "junit.xml")],
        capture_output=True, timeout=3600, check=False,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
