"""Which evidence proves which result: references into a host's `evidence/` files, and for results
that are not PASS, the excerpt an auditor reads next to the message.

What a control's result cites is what its declaration says it reads (`@control(..., reads=...)`,
walguard.controls). The collector's raw output is one file of framed sections (`TOKEN BEGIN name`
... `TOKEN END name rc`), read by the same parser as at collection time
(walguard.facts.sections); a reference names the section and its line range in that file, so the
excerpt can be found in the signed file itself. PostgreSQL's facts are one JSON document
(`postgresql.KEY` in `reads`); a reference names its keys. A control that declares nothing it
reads (a user's own, say) still gets every evidence file of its host as its reference.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from walguard.controls import REGISTRY
from walguard.fact_names import POSTGRES_PREFIX
from walguard.facts.sections import Section, split_sections, token_of

MAX_LINES = 40
MAX_CHARS = 4000


@dataclass
class HostEvidence:
    """One host's evidence files, read once for all of its results."""

    host: str
    files: list[str]  # paths relative to the run directory
    sections: dict[str, Section]  # collector.txt's, with their line ranges
    pg: dict[str, Any] | None
    error: str | None
    # The restore drill's (restore_drill.txt, framed the same way), when one was run.
    drill_sections: dict[str, Section] | None = None

    @classmethod
    def read(cls, run_dir: Path, host: str) -> HostEvidence:
        directory = run_dir / "evidence" / host
        files = (
            sorted(str(p.relative_to(run_dir)) for p in directory.rglob("*") if p.is_file())
            if directory.is_dir()
            else []
        )
        sections = _framed(directory / "collector.txt")
        drill = _framed(directory / "restore_drill.txt")
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
        return cls(host, files, sections, pg, error, drill)

    def refs(self, control: str, *, excerpts: bool) -> list[dict[str, Any]]:
        """References for one control's result; with the excerpt text when `excerpts`."""
        base = f"evidence/{self.host}"
        out: list[dict[str, Any]] = []
        if self.error is not None:
            ref = {"file": f"{base}/error.txt", "section": None, "lines": None, "keys": None}
            out.append({**ref, "excerpt": _cut(self.error.split("\n")) if excerpts else None})
            return out
        meta = REGISTRY.get(control)
        drill = self.drill_sections or {}
        for name in meta.reads if meta else ():
            if name in self.sections or name in drill:
                file = "collector.txt" if name in self.sections else "restore_drill.txt"
                sec = self.sections.get(name) or drill[name]
                lines = sec.output.split("\n") if sec.output else []
                out.append({
                    "file": f"{base}/{file}", "section": name,
                    "lines": [sec.first_line, sec.last_line], "keys": None,
                    "excerpt": _cut(lines) if excerpts else None,
                })  # fmt: skip
            elif name.startswith(POSTGRES_PREFIX) and self.pg is not None:
                key = name[len(POSTGRES_PREFIX) :]
                value = _pg_value(self.pg, key)
                if value is _MISSING:
                    continue
                text = json.dumps({key: value}, indent=1, sort_keys=True)
                out.append({
                    "file": f"{base}/postgresql.json", "section": None, "lines": None,
                    "keys": [key], "excerpt": _cut(text.split("\n")) if excerpts else None,
                })  # fmt: skip
        if not out:
            # Nothing more precise known: the whole of the host's evidence stands behind it.
            out = [
                {"file": f, "section": None, "lines": None, "keys": None, "excerpt": None}
                for f in self.files
            ]
        return out


_MISSING = object()


def _framed(path: Path) -> dict[str, Section]:
    if not path.is_file():
        return {}
    text = path.read_text(errors="replace")
    token = token_of(text)
    return split_sections(text, token) if token else {}


def _pg_value(pg: dict[str, Any], key: str) -> Any:
    if key.startswith("settings."):
        name = key.split(".", 1)[1]
        rows = [r for r in pg.get("settings", []) if isinstance(r, dict) and r.get("name") == name]
        return rows[0] if rows else _MISSING
    return pg.get(key, _MISSING)


def _cut(lines: list[str]) -> str:
    """At most MAX_LINES lines and MAX_CHARS characters, saying how much was left out."""
    kept = lines[:MAX_LINES]
    text = "\n".join(kept)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + " …"
    if len(lines) > MAX_LINES:
        text += f"\n… {len(lines) - MAX_LINES} more lines in the file"
    return text
