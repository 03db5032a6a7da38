"""Restore drill benchmark: what the drill's restore costs on a lab host, against the floor any
restore of the same backup pays, measured in the same run on the same host.

- The drill: `walguard audit --restore-drill -k RST-003` on one database host; its figure is the
  restore time the drill measured itself (copy of the base backup, replay to the target, the
  scratch cluster answering: results.json `hosts.HOST.restore_drill.restore_s`).
- The floor: on the same host, a plain copy of the same base backup into the scratch volume, and
  `pg_waldump` over the WAL the drill replayed (the backup's start segment to the segment the
  drill switched to), read from the archive: the bytes a restore must copy and the records it
  must read, without starting PostgreSQL.

The two alternate, `--repeat` times; the ratio (drill / floor) is taken pair by pair and the
median pair printed. It needs root and the lab up:

    sudo .venv/bin/python bench/drill.py [--host db2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from walguard.lab import manage, settings  # noqa: E402
from walguard.lab.labhost import LabHost  # noqa: E402
from walguard.lab.manage import host_by_name  # noqa: E402

FLOOR = """set -e
best=$(ls -1d {backups}/*/ | sort | tail -n 1)
d=$(mktemp -d {scratch}/walguard-floor.XXXXXX)
t0=$(date +%s.%N)
cp -a -- "$best." "$d/"
bin=$(dirname "$(readlink /proc/$(systemctl show -p MainPID --value {service})/exe)")
"$bin/pg_waldump" -p {archive} {start} {end} >/dev/null 2>&1 || true
t1=$(date +%s.%N)
rm -rf -- "$d"
echo "$t0 $t1"
"""


def drill(host: LabHost, root: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "audit", "--inventory", str(settings.INVENTORY_PATH),
         "--report-root", str(root), "--restore-drill", "-k", "RST-003", "--limit", host.name],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    (results,) = sorted(root.glob("*/results.json"))[-1:]
    record = json.loads(results.read_text())["hosts"][host.name].get("restore_drill") or {}
    if done.returncode != 0 or not record.get("restored"):
        raise SystemExit(f"the drill did not restore (exit {done.returncode}): {record}")
    return record


def floor(host: LabHost, start: str, end: str) -> float:
    script = FLOOR.format(
        backups=settings.BACKUP_DIR, scratch=settings.SCRATCH_DIR, archive="/pg_archive",
        service="postgresql@15-main.service", start=start, end=end,
    )  # fmt: skip
    done = subprocess.run(
        manage.ssh_argv(host, [f"sudo -n sh -c {shlex.quote(script)}"]),
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    t0, t1 = (float(x) for x in done.stdout.split())
    return t1 - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="db2")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    host = host_by_name(args.host)
    pairs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            record = drill(host, Path(tmp) / f"run{i}")
            took = float(record["restore_s"])  # type: ignore[arg-type]
            base = floor(host, str(record["start_wal"]), str(record["switched_wal"]))
            pairs.append((took, base, took / base))
            print(f"pair {i + 1}: drill {took:.3f} s, floor {base:.3f} s, ratio {took / base:.2f}")
    ratios = [r for _, _, r in pairs]
    drills = [d for d, _, _ in pairs]
    floors = [f for _, f, _ in pairs]
    print(
        f"{host.name}: drill restore {statistics.median(drills):.3f} s, floor (copy + pg_waldump) "
        f"{statistics.median(floors):.3f} s, ratio {statistics.median(ratios):.2f}x "
        f"(median of {len(pairs)} pairs; min {min(ratios):.2f}x, max {max(ratios):.2f}x)"
    )


if __name__ == "__main__":
    main()
