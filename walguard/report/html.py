"""report.html for auditors, written from results.json alone (plus the signer's name when the run
is signed), with Jinja2.

The page is self-contained (inline CSS, no script, no network) and built to stay small at
1,000 hosts x 40 controls: the host x control matrix is one letter per cell, rationale and
references are written once per control and linked, evidence is inside `<details>` (closed, so
the browser does not lay it out until asked).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from walguard.controls import SEVERITIES

TEMPLATES = Path(__file__).with_name("templates")

# Result -> (cell class, letter in the matrix). Letters as well as colours: the page must read
# the same printed in black and white or by a colour-blind auditor.
CELLS = {
    "PASS": ("p", "P"),
    "FAIL": ("f", "F"),
    "ERROR": ("e", "E"),
    "WAIVED": ("w", "W"),
    "REMEDIATED": ("r", "R"),
    "REMEDIATION FAILED": ("f", "X"),
    "REMEDIATION REFUSED": ("f", "Y"),
    "ROLLED BACK": ("f", "B"),
    "NOT APPLICABLE": ("n", "\u2013"),  # an en dash: "nothing to judge"
}
ORDER = tuple(CELLS)
# What an auditor must look at: everything that is neither a plain PASS nor NOT APPLICABLE.
ATTENTION = (
    "FAIL", "REMEDIATION FAILED", "REMEDIATION REFUSED", "ROLLED BACK", "ERROR", "REMEDIATED",
    "WAIVED",
)  # fmt: skip


def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["anchor"] = anchor
    return env


def anchor(*parts: str) -> str:
    """An id usable in a URL fragment, whatever a host name holds."""
    return "-".join("".join(c if c.isalnum() or c in "._" else "_" for c in p) for p in parts)


Cell = tuple[str, str, str | None] | None  # css class, letter, finding's anchor; None: not judged


def _matrix_cells(doc: dict[str, Any], control_ids: list[str]) -> Iterator[tuple[str, list[Cell]]]:
    """Each judged host's row of the host x control matrix, whatever it is drawn as."""
    for name, host in doc["hosts"].items():
        if not host["controls"]:
            continue
        by_control = {r["control"]: r["result"] for r in host["controls"]}
        row: list[Cell] = []
        for cid in control_ids:
            result = by_control.get(cid)
            if result is None:
                row.append(None)
                continue
            cls, letter = CELLS.get(result, ("e", "?"))
            row.append((cls, letter, anchor("r", name, cid) if result in ATTENTION else None))
        yield name, row


def _matrix_rows(doc: dict[str, Any], control_ids: list[str]) -> list[Markup]:
    """One table row per host, built here as one string: 40,000 cells through the template
    engine's loop would be most of the write time."""
    rows = []
    for name, row in _matrix_cells(doc, control_ids):
        cells = []
        for cell in row:
            if cell is None:
                cells.append("<td></td>")
                continue
            cls, letter, target = cell
            shown = f'<a href="#{target}">{letter}</a>' if target else letter
            cells.append(f"<td class={cls}>{shown}</td>")
        head = f'<th scope=row><a href="#{anchor("h", name)}">{escape(name)}</a></th>'
        rows.append(Markup(f"<tr>{head}{''.join(cells)}</tr>"))
    return rows


TABLE_MAX_HOSTS = 100


def _matrix_text(doc: dict[str, Any], control_ids: list[str]) -> Markup:
    """The matrix for many hosts: one line of letters per host in a `<pre>`. A table of 40,000
    cells takes Chromium seconds to lay out; a block of text with links only on the findings
    does not. Columns are grouped by area (ARC, DIR ...), the id's number written downwards."""
    width = max((len(n) for n in doc["hosts"]), default=4) + 2
    areas: list[str] = []
    digits: list[list[str]] = [[], [], []]
    previous = ""
    for cid in control_ids:
        area, _, number = cid.removeprefix("WG-").partition("-")
        areas.append(area if area != previous else "   ")
        previous = area
        for i in range(3):
            digits[i].append(number[i : i + 1] or " ")
    head = [" " * width + " ".join(a[:1] for a in areas)]
    # The area's name, spelled downwards over its first column.
    for i in range(1, 3):
        head.append(" " * width + " ".join(a[i : i + 1] or " " for a in areas))
    head += [" " * width + " ".join(d) for d in digits]
    lines = [escape(line) for line in head]
    for name, row in _matrix_cells(doc, control_ids):
        cells = []
        for cell in row:
            if cell is None:
                cells.append(" ")
                continue
            cls, letter, target = cell
            cells.append(f'<a class={cls} href="#{target}">{letter}</a>' if target else letter)
        label = f'<a href="#{anchor("h", name)}">{escape(name)}</a>' + " " * (width - len(name))
        lines.append(Markup(label + " ".join(cells)))
    return Markup('<pre class="mx">') + Markup("\n").join(lines) + Markup("</pre>")


def context(doc: dict[str, Any], signature: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the template needs, computed once from results.json."""
    hosts = doc["hosts"]
    control_ids = sorted(doc["controls"])
    attention = [r for host in hosts.values() for r in host["controls"] if r["result"] in ATTENTION]
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    order = {r: i for i, r in enumerate(ATTENTION)}
    attention.sort(key=lambda r: (rank.get(r["severity"], 9), order[r["result"]], r["control"]))
    # Findings grouped by control and result, identical messages once with their hosts: at
    # 1,000 hosts the same failure on 50 of them is one finding to read, not 50.
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for r in attention:
        g = groups.setdefault((r["control"], r["result"]), {
            "control": r["control"], "result": r["result"], "severity": r["severity"],
            "title": r["title"], "results": [], "messages": {},
        })  # fmt: skip
        g["results"].append(r)
        g["messages"].setdefault(r["message"], []).append(r["host"])
    # Passing results, compact: per control, the hosts it passed on; PASS notes kept.
    passed: dict[str, list[dict[str, Any]]] = {}
    not_applicable: dict[str, list[dict[str, Any]]] = {}
    for host in hosts.values():
        for r in host["controls"]:
            if r["result"] == "PASS":
                passed.setdefault(r["control"], []).append(r)
            elif r["result"] == "NOT APPLICABLE":
                not_applicable.setdefault(r["control"], []).append(r)
    # Per control, the hosts it was judged on, so that "PASS on all but these" can be said
    # instead of listing 990 host names.
    judged: dict[str, list[str]] = {}
    for name, host in hosts.items():
        for r in host["controls"]:
            judged.setdefault(r["control"], []).append(name)
    passed_rows = []
    for cid in control_ids:
        ok = passed.get(cid, [])
        na = not_applicable.get(cid, [])
        if not ok and not na:
            continue
        ok_names = {r["host"] for r in ok}
        plain = [r["host"] for r in ok if not r["message"]]
        row = {
            "control": cid,
            "passed": len(ok),
            "not_applicable": na,
            "noted": [r for r in ok if r["message"]],
            "plain": plain,
            "judged": len(judged.get(cid, [])),
            # Hosts it did not pass on, when that is the shorter list.
            "except": [n for n in judged.get(cid, []) if n not in ok_names]
            if len(plain) > 20 and len(ok) * 2 > len(judged.get(cid, []))
            else None,
        }
        passed_rows.append(row)
    zones = sorted({z for h in hosts.values() for z in (h.get("zones") or {})})
    return {
        "doc": doc,
        "run": doc["run"],
        "summary": doc["summary"],
        "severities": SEVERITIES,
        "order": ORDER,
        "cells": CELLS,
        "control_ids": control_ids,
        "matrix_rows": _matrix_rows(doc, control_ids) if len(hosts) <= TABLE_MAX_HOSTS else [],
        "matrix_text": _matrix_text(doc, control_ids) if len(hosts) > TABLE_MAX_HOSTS else "",
        "attention": attention,
        "groups": list(groups.values()),
        "passed": passed,
        "passed_rows": passed_rows,
        "not_applicable": not_applicable,
        "zones": zones,
        "signature": signature if signature is not None else doc["run"].get("signing"),
    }


def render(doc: dict[str, Any], signature: dict[str, Any] | None = None) -> str:
    return _env().get_template("report.html.j2").render(**context(doc, signature))


def write(doc: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / "report.html"
    path.write_text(render(doc), encoding="utf-8")
    return path
