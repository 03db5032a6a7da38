"""What walguard adds to pytest-html's report: result columns and the remediation table."""

from __future__ import annotations

import html
import json

import pytest

from walguard.results import Result

COLUMNS = ("host", "control", "severity", "result", "message")


def header(cells: list[str]) -> None:
    for i, key in enumerate(COLUMNS, start=1):
        cells.insert(i, f"<th>{key.capitalize()}</th>")


def row(report: pytest.TestReport, cells: list[str]) -> None:
    props = dict(report.user_properties)
    res = json.loads(str(props["walguard_result"])) if "walguard_result" in props else {}
    for i, key in enumerate(COLUMNS, start=1):
        cells.insert(i, f"<td>{html.escape(str(res.get(key, '')))}</td>")


def remediation_table(results: list[Result]) -> str:
    rows = [r for r in results if r.remediation]
    if not rows:
        return ""
    cells = "".join(
        f"<tr><td>{html.escape(r.host)}</td><td>{html.escape(r.control)}</td>"
        f"<td>{html.escape(r.remediation['script'])}</td>"
        f"<td>{html.escape(r.remediation['mode'])}</td>"
        f"<td>{html.escape(r.result)} / {html.escape(r.remediation['status'])}</td>"
        f"<td><pre>{html.escape(r.remediation['output'])}</pre></td></tr>"
        for r in rows
        if r.remediation
    )
    return (
        "<h2>Remediation</h2><table><tr><th>Host</th><th>Control</th><th>Script</th>"
        f"<th>Mode</th><th>Result / status</th><th>Output</th></tr>{cells}</table>"
    )
