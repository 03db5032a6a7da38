"""Which evidence proves which result: references into a host's `evidence/` files, and for results
that are not PASS, the excerpt an auditor reads next to the message.

The collector's raw output is one file of framed sections (`TOKEN BEGIN name` ... `TOKEN END name
rc`); a reference names the section and its line range in that file, so the excerpt can be found
in the signed file itself. PostgreSQL's facts are one JSON document; a reference names its keys.
A control without an entry here still gets every evidence file of its host as its reference.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_LINES = 40
MAX_CHARS = 4000

# What each control reads: ("c", collector section) or ("p", key of postgresql.json; `settings.X`
# is the row of pg_settings named X). Kept beside the writer rather than in the controls so that
# a control's module stays about the judgement; a missing entry only widens the reference.
SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "WG-ARC-001": (("p", "settings.archive_mode"),),
    "WG-ARC-002": (("p", "settings.wal_level"),),
    "WG-ARC-003": (("p", "settings.archive_command"), ("p", "settings.archive_library")),
    "WG-ARC-004": (("p", "settings.archive_command"),),
    "WG-ARC-005": (("p", "settings.archive_timeout"),),
    "WG-DIR-001": (("c", "archive_lstat"), ("c", "archive_realpath"), ("c", "archive_stat")),
    "WG-DIR-002": (("c", "archive_mount"), ("c", "root_mount")),
    "WG-DIR-003": (("c", "archive_stat"),),
    "WG-DIR-004": (("c", "archive_stat"),),
    "WG-DIR-005": (("c", "archive_df"),),
    "WG-ACT-001": (("p", "archiver"),),
    "WG-ACT-002": (("p", "archiver"),),
    "WG-ACT-003": (("p", "status_files"),),
    "WG-ACT-004": (
        ("p", "archiver"), ("c", "archiver_before"), ("c", "archive_files"),
        ("c", "archive_check"),
    ),
    "WG-ACT-008": (("c", "archive_perms"), ("c", "restore_user"), ("c", "archive_files")),
    "WG-ACT-005": (("p", "timeline"), ("c", "history_files"), ("c", "archive_check")),
    "WG-ACT-007": (
        ("p", "system_identifier"),
        ("p", "timeline"),
        ("c", "segment_headers"),
        ("c", "archive_check"),
    ),
    "WG-SEL-001": (("c", "selinux_enforce"), ("c", "getenforce"), ("c", "selinux_config")),
    "WG-SEL-002": (("c", "ps_context"),),
    "WG-SEL-003": (("c", "fcontext_local"),),
    "WG-SEL-004": (("c", "archive_context"), ("c", "archive_file_contexts")),
    "WG-SEL-005": (("c", "matchpathcon"), ("c", "restorecon_dryrun")),
    "WG-SEL-006": (("c", "avc"),),
    "WG-SYS-001": (
        ("c", "unit"), ("c", "service_active"), ("c", "boot_default"), ("c", "boot_units"),
        ("c", "start_conf"),
    ),
    "WG-SYS-002": (("c", "postgres_package"),),
    "WG-SYS-003": (("c", "failed_units"),),
    "WG-SYS-004": (("c", "journal_errors"),),
    "WG-SYS-005": (("c", "pg_file_settings"), ("c", "pg_config_files"), ("c", "pg_load_time")),
    "WG-SYS-006": (("c", "unit"), ("c", "postgres_exe")),
    "WG-NET-001": (("c", "listeners"),),
    "WG-NET-002": (("c", "listeners"),),
    "WG-NET-003": (("c", "firewall_units"), ("c", "nft_ruleset")),
    "WG-IDN-001": (
        ("c", "time_units"),
        ("c", "chrony_tracking"),
        ("c", "timedatectl"),
        ("c", "timesync_status"),
    ),
    "WG-IDN-002": (("c", "hostname"), ("c", "host_addresses"), ("c", "identity")),
    "WG-IDN-003": (("c", "tls_cert"),),
}

_FRAME = re.compile(r"^\S+ (BEGIN|END) (\S+)")


@dataclass
class HostEvidence:
    """One host's evidence files, read once for all of its results."""

    host: str
    files: list[str]  # paths relative to the run directory
    sections: dict[str, tuple[int, int, list[str]]]  # name -> (first line, last line, lines)
    pg: dict[str, Any] | None
    error: str | None

    @classmethod
    def read(cls, run_dir: Path, host: str) -> HostEvidence:
        directory = run_dir / "evidence" / host
        files = (
            sorted(str(p.relative_to(run_dir)) for p in directory.rglob("*") if p.is_file())
            if directory.is_dir()
            else []
        )
        sections: dict[str, tuple[int, int, list[str]]] = {}
        collector = directory / "collector.txt"
        if collector.is_file():
            sections = _sections(collector.read_text(errors="replace").split("\n"))
        pg: dict[str, Any] | None = None
        pg_path = directory / "postgresql.json"
        if pg_path.is_file():
            try:
                loaded = json.loads(pg_path.read_text(errors="replace"))
                pg = loaded if isinstance(loaded, dict) else None
            except ValueError:
                pg = None  # the file holds the reason PostgreSQL could not be read
        error_path = directory / "error.txt"
        error = error_path.read_text(errors="replace").strip() if error_path.is_file() else None
        return cls(host, files, sections, pg, error)

    def refs(self, control: str, *, excerpts: bool) -> list[dict[str, Any]]:
        """References for one control's result; with the excerpt text when `excerpts`."""
        base = f"evidence/{self.host}"
        out: list[dict[str, Any]] = []
        if self.error is not None:
            ref = {"file": f"{base}/error.txt", "section": None, "lines": None, "keys": None}
            out.append({**ref, "excerpt": _cut(self.error.split("\n")) if excerpts else None})
            return out
        for kind, name in SOURCES.get(control, ()):
            if kind == "c" and name in self.sections:
                first, last, lines = self.sections[name]
                out.append({
                    "file": f"{base}/collector.txt", "section": name, "lines": [first, last],
                    "keys": None, "excerpt": _cut(lines) if excerpts else None,
                })  # fmt: skip
            elif kind == "p" and self.pg is not None:
                value = _pg_value(self.pg, name)
                if value is _MISSING:
                    continue
                text = json.dumps({name: value}, indent=1, sort_keys=True)
                out.append({
                    "file": f"{base}/postgresql.json", "section": None, "lines": None,
                    "keys": [name], "excerpt": _cut(text.split("\n")) if excerpts else None,
                })  # fmt: skip
        if not out:
            # Nothing more precise known: the whole of the host's evidence stands behind it.
            out = [
                {"file": f, "section": None, "lines": None, "keys": None, "excerpt": None}
                for f in self.files
            ]
        return out


_MISSING = object()


def _pg_value(pg: dict[str, Any], key: str) -> Any:
    if key.startswith("settings."):
        name = key.split(".", 1)[1]
        rows = [r for r in pg.get("settings", []) if isinstance(r, dict) and r.get("name") == name]
        return rows[0] if rows else _MISSING
    return pg.get(key, _MISSING)


def _sections(lines: list[str]) -> dict[str, tuple[int, int, list[str]]]:
    """Section name -> (first, last line number of its body, 1-based, in the file; its lines)."""
    found: dict[str, tuple[int, int, list[str]]] = {}
    token: str | None = None
    start, name = 0, ""
    for number, line in enumerate(lines, start=1):
        m = _FRAME.match(line)
        if m is None:
            continue
        this_token = line.split(" ", 1)[0]
        if m.group(1) == "BEGIN" and (token is None or this_token == token):
            token, start, name = this_token, number, m.group(2)
        elif m.group(1) == "END" and this_token == token and start and m.group(2) == name:
            body = lines[start : number - 1]
            if body and body[-1] == "":  # the collector prints a newline before END
                body = body[:-1]
            found[name] = (start + 1, start + max(len(body), 1), body)
            start = 0
    return found


def _cut(lines: list[str]) -> str:
    """At most MAX_LINES lines and MAX_CHARS characters, saying how much was left out."""
    kept = lines[:MAX_LINES]
    text = "\n".join(kept)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + " …"
    if len(lines) > MAX_LINES:
        text += f"\n… {len(lines) - MAX_LINES} more lines in the file"
    return text
