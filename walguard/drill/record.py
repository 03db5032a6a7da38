"""What results.json and the report keep of a host's restore drill: the DORA drill record an
auditor reads (the backup, the target, whether PostgreSQL reached it, the canaries, the restore
time against the RTO), or why the drill could not be carried out."""

from __future__ import annotations

from typing import Any

from walguard.drill.run import NOT_ASKED
from walguard.facts.host import HostFacts


def drill_record(found: HostFacts | None) -> dict[str, Any] | None:
    """None when no drill was asked for (or the host was never reached)."""
    if found is None or not found.reachable:
        return None
    part = found.drill
    if part.value is None:
        return None if part.error == NOT_ASKED else {"error": part.error}
    d = part.value
    return {
        "backup": d.backup,
        # Where it was restored: the restore host (walguard_restore_host), or null for the host.
        "restore_host": d.restored_on,
        "start_wal": d.start_wal,
        "switched_wal": d.switched,
        "target": f"{d.target} UTC",
        "restored": d.restored,
        "reached": d.stopping_line,
        "fatal": next(iter(d.fatal_lines), None),
        "canary_a": {"id": d.canary_a.id, "written": f"{d.canary_a.written} UTC",
                     "present": d.a_rows == 1},
        "canary_b": {"id": d.canary_b.id, "written": f"{d.canary_b.written} UTC",
                     "present": d.b_rows == 1},
        "system_identifier": d.restored_sysid,
        "primary_system_identifier": d.primary_sysid,
        "restore_s": round(d.restore_s, 3) if d.restore_s is not None else None,
        "copy_s": round(d.copy_s, 3) if d.copy_s is not None else None,
        "space": d.space,
        "limits": d.limits,
        "stale_removed": list(d.stale),
        "cleanup": d.cleanup,
    }  # fmt: skip
