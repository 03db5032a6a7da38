"""The staged restart's health gates, read from what gates.sh printed on the host: its role in
replication, the gates before a restart, the way back it recorded, the gates after, the rollback
and the downtime the watcher saw. Each gate is judged here, on the host's output and the policy's
thresholds; a gate whose output is missing or unreadable is failed, never passed."""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass
from importlib import resources

from walguard.errors import FactUnavailable
from walguard.facts.sections import Section, split_sections
from walguard.facts.transport import Connection
from walguard.inventory.load import Target


def gates_script() -> str:
    return resources.files("walguard.remediate").joinpath("gates.sh").read_text()


@dataclass(frozen=True)
class Gate:
    """One gate: its name, whether the host passed it, and what the host showed."""

    name: str
    ok: bool
    said: str

    def as_dict(self) -> dict[str, object]:
        return {"gate": self.name, "ok": self.ok, "said": self.said}


@dataclass(frozen=True)
class Roles:
    standby: bool
    upstream: str | None  # a standby's sender_host
    standbys: tuple[str, ...]  # a primary's standbys' addresses ("local" for a socket)


def gate_env(
    target: Target,
    action: str,
    token: str,
    *,
    save_dir: str = "",
    standbys_before: int = 0,
    archive_wait_s: float = 30,
) -> dict[str, str]:
    policy, connect = target.policy, target.connect
    return {
        "WG_GATE": action,
        "WG_TOKEN": token,
        "WG_PG_OWNER": policy.archive_owner,
        "WG_PG_SOCKET_DIR": connect.pg_socket_dir,
        "WG_PG_PORT": str(connect.pg_port),
        "WG_SERVICE": policy.postgres_service,
        "WG_ARCHIVE_DIR": policy.archive_dir,
        "WG_SAVE_DIR": save_dir,
        "WG_TIMEOUT_S": str(policy.restart_timeout_s),
        "WG_ARCHIVE_WAIT_S": str(max(1, int(archive_wait_s))),
        "WG_STANDBYS_BEFORE": str(standbys_before),
    }


def gate_command(env: dict[str, str]) -> str:
    assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    return f"env {assignments} bash -c {shlex.quote(gates_script())}"


def new_token() -> str:
    return f"@@WG-{secrets.token_hex(8)}@@"


def run_gate(
    conn: Connection, target: Target, action: str, **options: int | float | str
) -> dict[str, Section]:
    """One gates.sh action on the host, as root; FactUnavailable when it could not be run."""
    token = new_token()
    env = gate_env(target, action, token, **options)  # type: ignore[arg-type]
    limit = target.policy.restart_timeout_s * 3 + 60
    reply = conn.run_raw(gate_command(env), become=True, timeout_s=limit)
    return split_sections(reply.stdout, token)


def _rows(section: Section | None, kind: str) -> list[list[str]]:
    if section is None:
        return []
    return [
        line.split("|")[1:] for line in section.output.splitlines() if line.startswith(f"{kind}|")
    ]


def read_roles(sections: dict[str, Section]) -> Roles:
    found = sections.get("roles")
    if found is None or found.rc != 0:
        said = found.output.strip()[-200:] if found is not None else "no output"
        raise FactUnavailable(f"the host's role in replication was not read: {said}")
    lines = found.output.splitlines()
    upstream = next((r[0] for r in _rows(found, "upstream") if r and r[0]), None)
    return Roles(
        standby=bool(lines) and lines[0] == "standby",
        upstream=upstream,
        standbys=tuple(r[0] for r in _rows(found, "standby") if r),
    )


def judge_before(
    sections: dict[str, Section], *, max_lag_s: float, backlog_max: int, min_free_pct: int
) -> tuple[list[Gate], int, tuple[str, ...]]:
    """The gates before a restart, the number of standbys streaming now (the after-gate waits
    for as many), and the settings already waiting for a restart (the restart activates them;
    the way back pins what runs now)."""
    before = sections.get("before")
    if before is None or before.rc != 0:
        said = before.output.strip()[-200:] if before is not None else "no output"
        return [Gate("host read", False, f"the gates were not read: {said}")], 0, ()
    gates: list[Gate] = []
    base = _rows(before, "basebackups")
    locks = _rows(before, "pgbackrest_locks")
    if not base or not locks or not base[0][0].isdigit() or not locks[0][0].isdigit():
        gates.append(Gate("no backup running", False, "not read"))
    else:
        running = int(base[0][0]) + int(locks[0][0])
        said = f"pg_basebackup streams: {base[0][0]}, pgBackRest backup locks held: {locks[0][0]}"
        gates.append(Gate("no backup running", running == 0, said))
    lags = _rows(before, "lag")
    streaming = 0
    late: list[str] = []
    for row in lags:
        if len(row) != 3:
            late.append(f"unreadable {row!r}")
            continue
        address, state, lag = row
        try:
            seconds = float(lag)
        except ValueError:
            late.append(f"{address}: lag {lag!r} unreadable")
            continue
        if state == "streaming":
            streaming += 1
        if state != "streaming" or seconds > max_lag_s:
            late.append(f"{address}: {state}, replay lag {seconds:.1f} s")
    gates.append(
        Gate(
            "standbys caught up",
            not late,
            "; ".join(late)
            or (f"{len(lags)} standby(s) within {max_lag_s:g} s" if lags else "no standby"),
        )
    )
    ready = _rows(before, "ready")
    if not ready or not ready[0][0].isdigit():
        gates.append(Gate("archiver backlog", False, "not read"))
    else:
        count = int(ready[0][0])
        gates.append(
            Gate(
                "archiver backlog",
                count <= backlog_max,
                f"{count} segment(s) waiting to be archived (at most {backlog_max})",
            )
        )
    spaces = _rows(before, "space")
    if len(spaces) != 2 or not all(len(r) == 2 and r[1].isdigit() for r in spaces):
        gates.append(Gate("free space", False, "not read"))
    else:
        short = [f"{p}: {free}% free" for p, free in spaces if int(free) < min_free_pct]
        said = "; ".join(short) or ", ".join(f"{p}: {free}% free" for p, free in spaces)
        gates.append(Gate("free space", not short, f"{said} (at least {min_free_pct}%)"))
    pending = tuple(r[0] for r in _rows(before, "pending") if r)
    return gates, streaming, pending


def judge_after(sections: dict[str, Section]) -> list[Gate]:
    """The gates after a restart, each from its own section."""
    names = (
        ("after_accepting", "accepts connections"),
        ("after_pending", "nothing pending a restart"),
        ("after_archiving", "archiving works"),
        ("after_standbys", "standbys streaming again"),
    )
    gates = []
    for section_name, gate in names:
        found = sections.get(section_name)
        if found is None:
            gates.append(Gate(gate, False, "not read (the gate's output ended early)"))
            continue
        said = " ".join(found.output.split())[:300]
        if section_name == "after_pending":
            pending = [r[0] for r in _rows(found, "pending") if r]
            ok = found.rc == 0 and not pending
            if pending:
                said = f"still pending: {', '.join(pending)}"
            elif found.rc != 0:
                said = said or f"not read (exit {found.rc})"
            else:
                said = "none"
        else:
            ok = found.rc == 0
        gates.append(Gate(gate, ok, said))
    return gates


def record_saved(sections: dict[str, Section]) -> tuple[bool, str]:
    """Whether the way back was recorded, and what: where, and the settings it pins."""
    found = sections.get("record")
    if found is None:
        return False, "the way back was not recorded (no output)"
    lines = found.output.splitlines()
    saved = next((line[len("saved ") :] for line in lines if line.startswith("saved ")), None)
    if found.rc != 0 or saved is None:
        return False, " ".join(found.output.split())[:300] or f"exit {found.rc}"
    pinned = [line.split()[1] for line in lines if line.startswith("running ") and " = " in line]
    return True, (
        f"{saved}: postgresql.auto.conf, and {len(pinned)} restart-only setting(s) at the values "
        f"the server runs with: {', '.join(pinned)}"
    )


_WATCH = re.compile(r"^(up|down) (\d+(?:\.\d+)?)$")


def downtime(section: Section | None) -> float | None:
    """Seconds from the first refused connection to the first accepted one after it; 0 when the
    watcher never saw the server refuse; None when it was not watched or never came back."""
    if section is None:
        return None
    seen = [m.groups() for m in map(_WATCH.match, section.output.splitlines()) if m]
    down_at = None
    for state, at in seen:
        if state == "down" and down_at is None:
            down_at = float(at)
        elif state == "up" and down_at is not None:
            return round(float(at) - down_at, 3)
    return 0.0 if seen and down_at is None else None
