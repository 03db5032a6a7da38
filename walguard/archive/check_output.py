"""Reading what an archiving tool's own check printed (walguard_archive_check_command).

A tool's check is judged by what it prints, not only by its exit status: `pgbackrest verify`
exits 0 while printing `status: error` for a repository holding a damaged segment (measured with
Debian's pgBackRest 2.45 after truncating an archived segment, and pgBackRest issue #2502), and
without `--output=text` it prints nothing at all, so an exit status of 0 says nothing. WAL-G's
`wal-verify` exits 0 when a check reports FAILURE; the status is in what it prints. Barman's
`check` prints one line per check with OK or FAILED.

Every reading is PASS (ok=True), FAIL (ok=False) or cannot verify (ok=None): a check whose
output does not say how it went is never taken as a pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# pgBackRest: `status: ok` / `status: error` in `verify --output=text` (src/command/verify/verify.c,
# verifyRender); a failed command prints `ERROR: [NNN]: message` on stderr and exits NNN.
PGBACKREST_STATUS = re.compile(r"^\s*status:\s*(\S+)", re.MULTILINE)
PGBACKREST_ERROR = re.compile(r"^(?:.*\s)?ERROR: \[\d{3}\]:.*$", re.MULTILINE)
# WAL-G: `[wal-verify] integrity check status: FAILURE`, after the logger's prefix.
WALG_STATUS = re.compile(r"\[wal-verify\]\s+(\w+)\s+check status:\s*(\w+)", re.IGNORECASE)
# Barman: `Server NAME:`, then `\t<check>: OK|FAILED[ (hint)]` (barman/output.py result_check);
# the first status word after the check's name is its status (a hint may hold colons). --nagios:
# `BARMAN OK - ...` or `BARMAN CRITICAL - ...` and `server.check: FAILED (hint)` lines.
BARMAN_CHECK = re.compile(r"^\s*([^\t\n].*?): (OK|FAILED)\b(.*)$", re.MULTILINE)
# `barman check` colours OK/FAILED on a terminal; the codes are not part of the words.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class CheckReading:
    ok: bool | None  # True: the check passed; False: it reported failure; None: cannot tell
    words: str  # the tool's own words that decided it (quoted in the result)


def read_check(command: str, rc: int, output: str) -> CheckReading:
    """The verdict of the tool's check `command` from its exit status and output."""
    words = command.split()
    tool = words[0].rsplit("/", 1)[-1] if words else ""
    action = next((w for w in words[1:] if not w.startswith("-")), "")
    text = output.strip()
    if tool == "pgbackrest":
        return _pgbackrest(action, rc, text)
    if tool == "wal-g":
        return _walg(action, rc, text)
    if tool == "barman":
        return _barman(rc, text)
    return _by_exit(rc, text)


def _last_line(text: str) -> str:
    return text.splitlines()[-1].strip() if text else "no output"


def _by_exit(rc: int, text: str) -> CheckReading:
    if rc != 0:
        return CheckReading(False, f"exit {rc}: {_last_line(text)}")
    return CheckReading(True, f"exit 0: {_last_line(text)}")


def _pgbackrest(action: str, rc: int, text: str) -> CheckReading:
    errors = [m.group(0).strip() for m in PGBACKREST_ERROR.finditer(text)]
    if rc != 0 or errors:
        said = "; ".join(errors) if errors else _last_line(text)
        return CheckReading(False, f"exit {rc}: {said}")
    if action != "verify":
        return CheckReading(True, f"exit 0: {_last_line(text)}")
    statuses = PGBACKREST_STATUS.findall(text)
    if not statuses:
        return CheckReading(
            None,
            "pgbackrest verify printed no status (it exits 0 whatever it found; run it with "
            "--output=text --verbose so that its status can be read)",
        )
    bad = [s for s in statuses if s != "ok"]
    if bad:
        detail = [line.strip() for line in text.splitlines() if line.strip()]
        return CheckReading(False, f"status: {bad[0]} ({'; '.join(detail[1:4])})")
    return CheckReading(True, "status: ok")


def _walg(action: str, rc: int, text: str) -> CheckReading:
    if action != "wal-verify":
        return _by_exit(rc, text)
    statuses = _walg_json(text) or [(m.group(1).lower(), m.group(2).upper(), "")
                                     for m in WALG_STATUS.finditer(text)]  # fmt: skip
    if not statuses:
        if rc != 0:
            return CheckReading(False, f"exit {rc}: {_last_line(text)}")
        return CheckReading(None, "wal-g wal-verify printed no check status")
    if not statuses[0][2] and "Highest timeline found in storage: 0" in text:
        statuses = [(n, s, "no WAL in storage" if n == "timeline" else "") for n, s, _ in statuses]
    said = [f"{name} check status: {status}" + (f" ({why})" if why else "")
            for name, status, why in statuses]  # fmt: skip
    # FAILURE fails; so does the timeline check's WARNING, which WAL-G gives only when the
    # storage holds no WAL at all. The integrity check's WARNING (segments still uploading) passes.
    failed = [line for line, (name, status, _) in zip(said, statuses, strict=True)
              if status != "OK" and (status != "WARNING" or name == "timeline")]  # fmt: skip
    if failed or rc != 0:
        return CheckReading(False, "; ".join(failed) or f"exit {rc}: {_last_line(text)}")
    return CheckReading(True, "; ".join(said))


def _walg_json(text: str) -> list[tuple[str, str, str]]:
    """`wal-verify --json` prints one line: {"integrity": {"status": "FAILURE", ...}, ...}
    (walguard reads stderr with stdout: WAL-G's log lines are around it)."""
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        found = []
        for name, check in doc.items():
            if isinstance(check, dict) and isinstance(check.get("status"), str):
                details = check.get("details")
                why = ""
                deep = details if isinstance(details, dict) else {}
                highest = deep.get("highest_storage_timeline_id")
                if name == "timeline" and highest == 0:
                    why = "no WAL in storage"
                found.append((str(name).lower(), check["status"].upper(), why))
        if found:
            return found
    return []


def _barman(rc: int, text: str) -> CheckReading:
    text = ANSI.sub("", text)
    checks = [(m.group(1).strip(), m.group(2), m.group(3)) for m in BARMAN_CHECK.finditer(text)]
    failed = [f"{name}: FAILED{rest}" for name, status, rest in checks if status == "FAILED"]
    critical = [line for line in text.splitlines() if line.startswith("BARMAN CRITICAL")]
    if failed or critical or rc != 0:
        said = failed or critical or [f"exit {rc}: {_last_line(text)}"]
        return CheckReading(False, "; ".join(said))
    if text.startswith("BARMAN OK"):
        return CheckReading(True, text.splitlines()[0])
    if not checks:
        return CheckReading(None, "barman check printed no check line")
    return CheckReading(True, f"every check OK ({len(checks)})")
