"""README.md as a Markdown renderer reads it (markdown-it-py, CommonMark with GitHub's tables):
the table of controls is one table of every control, the exit-code table has every code, the
user's sections come in the user's order before the developers', no heading is there twice, every
link to a heading (#anchor, GitHub's slugs) finds it, and the measured figures are one dated
table. Each check also runs on a broken copy of the README, which it must find wrong."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from markdown_it.token import Token

from walguard.exit_codes import Exit

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"

# The user's part, in this order (other sections may come between): what walguard is (the opening
# under the title), installing it on a jump host, pointing it at an inventory, the first audit,
# reading and verifying its report, nightly audits, the CI gate and exit codes; then the controls
# and the policy keys. The developers' part comes after all of it.
USER_PART = (
    "Quick start on a jump host",
    "Installing on a jump host or CI runner",
    "Your Ansible inventory",
    "Auditing",
    "Reports",
    "Signing and verifying",
    "Nightly audits",
    "CI gate",
    "Exit codes",
    "Controls",
    "Policy keys",
)
DEVELOPERS_PART = (
    "Development: set up with make",
    "The lab",
    "Layout",
    "Adding a control",
    "Benchmark",
    "The test suite",
)


@dataclass
class Table:
    section: str  # the heading it is under
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


@dataclass
class Doc:
    headings: list[tuple[int, str]]  # (level, text), in order
    tables: list[Table]
    links: list[str]  # every link target
    paragraphs: list[str]  # every paragraph's text


def _text(inline: Token) -> str:
    """An inline token's text as it renders (code spans' content, no markup)."""
    return "".join(
        child.content for child in inline.children or [] if child.type in ("text", "code_inline")
    )


def parse(markdown: str) -> Doc:
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    doc = Doc([], [], [], [])
    section = ""
    table: Table | None = None
    row: list[str] | None = None
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            section = _text(tokens[i + 1])
            doc.headings.append((int(token.tag[1]), section))
        elif token.type == "table_open":
            table = Table(section, [])
            doc.tables.append(table)
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and table is not None and row is not None:
            if table.header:
                table.rows.append(row)
            else:
                table.header = row
        elif (
            token.type == "inline"
            and row is not None
            and tokens[i - 1].type in ("th_open", "td_open")
        ):
            row.append(_text(token).strip())
        elif token.type == "table_close":
            table = row = None
        elif token.type == "inline" and tokens[i - 1].type == "paragraph_open":
            doc.paragraphs.append(token.content)
        if token.type == "inline":
            doc.links += [
                str(child.attrs["href"])
                for child in token.children or []
                if child.type == "link_open"
            ]
    return doc


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, every character dropped but letters, digits,
    `_`, `-` and spaces, spaces made `-`."""
    kept = (
        c
        for c in heading.lower()
        if c in "- " or unicodedata.category(c)[0] in "LMN" or unicodedata.category(c) == "Pc"
    )
    return "".join(kept).replace(" ", "-")


def anchors(doc: Doc) -> set[str]:
    """Every heading's anchor; a repeated one gets -1, -2, ... as on GitHub."""
    seen: Counter[str] = Counter()
    found = set()
    for _, text in doc.headings:
        base = slug(text)
        found.add(f"{base}-{seen[base]}" if seen[base] else base)
        seen[base] += 1
    return found


@cache
def control_ids() -> list[str]:
    """Every control, as `walguard controls` lists them (in its order, the table's)."""
    done = subprocess.run(
        [sys.executable, "-m", "walguard.cli", "controls", "--format", "json"],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=True,
    )  # fmt: skip
    return [record["id"] for record in json.loads(done.stdout)]


def tables_headed(doc: Doc, header: list[str]) -> list[Table]:
    return [t for t in doc.tables if t.header == header]


def controls_table(doc: Doc) -> list[str]:
    problems = []
    found = tables_headed(doc, ["id", "severity", "control"])
    if len(found) != 1:
        return [f"{len(found)} tables of controls, not one"]
    (table,) = found
    if table.section != "Controls":
        problems.append(f"the table of controls is under {table.section!r}, not 'Controls'")
    ids = [row[0] for row in table.rows]
    if ids != control_ids():
        missing = [c for c in control_ids() if c not in ids]
        problems.append(f"the table of controls has {len(ids)} rows, missing {missing}")
    # A blank line in the table ends it: the rows after it render as a paragraph of text.
    strays = [p for p in doc.paragraphs if re.match(r"\| WG-[A-Z]+-\d+ \|", p)]
    problems += [f"a row outside the table of controls: {p.splitlines()[0]}" for p in strays]
    return problems


def exit_code_table(doc: Doc) -> list[str]:
    found = tables_headed(doc, ["code", "subcommands", "meaning"])
    if len(found) != 1:
        return [f"{len(found)} exit-code tables, not one"]
    (table,) = found
    problems = []
    if table.section != "Exit codes":
        problems.append(f"the exit-code table is under {table.section!r}, not 'Exit codes'")
    codes = [row[0] for row in table.rows]
    if codes != [str(code.value) for code in Exit]:
        problems.append(f"the exit-code table lists {codes}, not every code in order")
    return problems


def section_order(doc: Doc) -> list[str]:
    problems = []
    top = [text for level, text in doc.headings if level == 1]
    if top != ["walguard"]:
        problems.append(f"the title headings are {top}, not one 'walguard'")
    h2 = [text for level, text in doc.headings if level == 2]
    missing = [h for h in (*USER_PART, *DEVELOPERS_PART) if h not in h2]
    if missing:
        return [*problems, f"no section {missing}"]
    if h2[0] != USER_PART[0]:
        problems.append(f"the first section is {h2[0]!r}, not {USER_PART[0]!r}")
    places = [h2.index(h) for h in (*USER_PART, *DEVELOPERS_PART)]
    if places != sorted(places):
        problems.append(f"sections out of order: {[h2[p] for p in places]}")
    first_developers = h2.index(DEVELOPERS_PART[0])
    if h2.index(USER_PART[-1]) > first_developers:
        problems.append("a user's section comes after the developers' part")
    return problems


def duplicate_headings(doc: Doc) -> list[str]:
    counts = Counter(doc.headings)
    return [
        f"heading {'#' * level} {text} is there {n} times"
        for (level, text), n in counts.items()
        if n > 1
    ]


def internal_links(doc: Doc) -> list[str]:
    """A link to a heading finds it; a link to a file of the repository finds the file."""
    known = anchors(doc)
    problems = []
    for href in doc.links:
        if href.startswith("#"):
            if href[1:] not in known:
                problems.append(f"link {href} finds no heading")
        elif "://" not in href and not (REPO / href.split("#")[0]).exists():
            problems.append(f"link {href} finds no file")
    return problems


def figures_table(doc: Doc) -> list[str]:
    dated = [t for t in doc.tables if "date" in t.header]
    if len(dated) != 1:
        return [f"{len(dated)} dated tables of figures, not one"]
    (table,) = dated
    problems = []
    if table.section != "Measured figures":
        problems.append(f"the figures are under {table.section!r}, not 'Measured figures'")
    column = table.header.index("date")
    for row in table.rows:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", row[column]):
            problems.append(f"figures without a date: {row[0]}")
        if not row[table.header.index("measured with")]:
            problems.append(f"figures without what measured them: {row[0]}")
    return problems


CHECKS: dict[str, Callable[[Doc], list[str]]] = {
    "controls": controls_table,
    "exit codes": exit_code_table,
    "order": section_order,
    "duplicates": duplicate_headings,
    "links": internal_links,
    "figures": figures_table,
}


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_the_readme(check: Callable[[Doc], list[str]]) -> None:
    assert check(parse(README.read_text())) == []


def test_the_parser_sees_what_the_readme_has() -> None:
    doc = parse(README.read_text())
    # A `# 1. ...` line in a code block is no heading; a heading's code span is its text.
    assert all(level > 1 or text == "walguard" for level, text in doc.headings)
    assert (2, "Exporting a run to GRC tools (OSCAL)") not in doc.headings
    assert (3, "Exporting a run to GRC tools (OSCAL)") in doc.headings
    assert "#waivers-drift-the-pre-change-gate-and-retention" in doc.links
    assert slug("Waivers, drift, the pre-change gate and retention") == (
        "waivers-drift-the-pre-change-gate-and-retention"
    )
    assert slug("Exporting a run to GRC tools (OSCAL)") == "exporting-a-run-to-grc-tools-oscal"
    assert slug("Development: set up with make") == "development-set-up-with-make"


def _cut(text: str, heading: str) -> tuple[str, str]:
    """`text` without the section under `heading` (to the next heading of its level), and it."""
    start = text.index(f"\n{heading}\n") + 1
    level = heading.split(" ")[0]
    end = text.find(f"\n{level} ", start)
    end = len(text) if end < 0 else end + 1
    return text[:start] + text[end:], text[start:end]


def _blank_line_in_the_controls_table(text: str) -> str:
    row = f"| {control_ids()[5]} |"
    return text.replace(f"\n{row}", f"\n\n{row}", 1)


def _a_control_row_less(text: str) -> str:
    return re.sub(rf"\n\| {control_ids()[-1]} \|[^\n]*", "", text, count=1)


def _an_exit_code_row_less(text: str) -> str:
    return re.sub(r"\n\| 8 \| lab \|[^\n]*", "", text, count=1)


def _quick_start_last(text: str) -> str:
    rest, section = _cut(text, "## Quick start on a jump host")
    return rest.rstrip("\n") + "\n\n" + section


def _controls_among_the_developers(text: str) -> str:
    rest, section = _cut(text, "## Controls")
    return rest.rstrip("\n") + "\n\n" + section


def _a_heading_twice(text: str) -> str:
    return text + "\n## Reports\n\nAgain.\n"


def _a_link_to_nowhere(text: str) -> str:
    return text + "\nSee [the gate](#the-gate).\n"


def _a_link_to_no_file(text: str) -> str:
    return text + "\nSee [the schema](walguard/report/no-such.schema.json).\n"


def _an_undated_figure(text: str) -> str:
    return re.sub(r"\| 2026-12-06 \|\n", "| last week |\n", text, count=1)


BROKEN = [
    ("controls", _blank_line_in_the_controls_table, "a row outside the table of controls"),
    ("controls", _a_control_row_less, "missing ["),
    ("exit codes", _an_exit_code_row_less, "not every code in order"),
    ("order", _quick_start_last, "the first section is"),
    ("order", _controls_among_the_developers, "sections out of order"),
    ("duplicates", _a_heading_twice, "heading ## Reports is there 2 times"),
    ("links", _a_link_to_nowhere, "link #the-gate finds no heading"),
    ("links", _a_link_to_no_file, "link walguard/report/no-such.schema.json finds no file"),
    ("figures", _an_undated_figure, "figures without a date"),
]


@pytest.mark.parametrize(
    ("check", "breaks", "said"), BROKEN, ids=[b.__name__.strip("_") for _, b, _ in BROKEN]
)
def test_each_check_finds_a_broken_copy(
    check: str, breaks: Callable[[str], str], said: str
) -> None:
    text = README.read_text()
    broken = breaks(text)
    assert broken != text
    problems = CHECKS[check](parse(broken))
    assert any(said in p for p in problems), problems
