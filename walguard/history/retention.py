"""Retention: keep the last N runs of an inventory in a reports directory.

Only walguard's own run directories of the same inventory are candidates; the run just written
is always kept, and so is the newest signed run (the one the next run's drift verifies and
compares with), even when the newest N runs were not signed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from walguard.history.previous import inventory_of, is_signed, read_doc, runs_in


def prune(root: Path, current: Path, inventory: str, keep: int) -> list[Path]:
    """Removes this inventory's runs beyond the newest `keep` (counting `current`); returns
    what it removed."""
    if keep < 1:
        raise ValueError("keep at least the run just written (1)")
    mine = []
    for run_dir in runs_in(root):
        doc = read_doc(run_dir)
        if run_dir == current or (doc is not None and inventory_of(doc) == inventory):
            mine.append(run_dir)
    newest_signed = next((d for d in mine if is_signed(d)), None)
    kept = {current, *mine[:keep]}
    if newest_signed is not None:
        kept.add(newest_signed)
    removed = []
    for run_dir in mine:
        if run_dir not in kept:
            shutil.rmtree(run_dir)
            removed.append(run_dir)
    return removed
