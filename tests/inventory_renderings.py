"""One inventory, three ways: a YAML inventory document rendered as Ansible INI and as a dynamic
inventory script, meaning the same to Ansible (and so to walguard). Used by the unit tests and
the lab tests that compare the targets and verdicts of each rendering.
"""

from __future__ import annotations

import ast
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from walguard.inventory.model import expand_range


def _groups(name: str, body: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each group of the document, depth first, as the YAML reader walks it."""
    body = body or {}
    yield name, body
    for child, child_body in (body.get("children") or {}).items():
        yield from _groups(child, child_body)


def _top(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, body in doc.items():
        yield from _groups(name, body)


def _plain_string(value: Any) -> bool:
    """A string Ansible's ini plugin reads back as written, without quotes."""
    if not isinstance(value, str) or not value or value != value.strip() or "\n" in value:
        return False
    try:
        ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return True
    return False


def _host_pair(key: str, value: Any) -> str:
    if _plain_string(value) and shlex.quote(value) == value:
        return f"{key}={value}"
    return shlex.quote(f"{key}={value!r}")  # a literal, quoted once more for the split


def to_ini(doc: dict[str, Any]) -> str:
    """INI text for a YAML inventory document: strings as written where Ansible's ini plugin
    reads them back unchanged, every other value as a Python literal, which it reads back with
    ast.literal_eval."""
    lines: list[str] = []
    for name, body in _top(doc):
        lines.append(f"[{name}]")  # declares the group, even with no hosts
        for host, host_vars in (body.get("hosts") or {}).items():
            pairs = [_host_pair(k, v) for k, v in (host_vars or {}).items()]
            lines.append(" ".join([host, *pairs]))
        if body.get("vars"):
            lines.append(f"[{name}:vars]")
            lines.extend(
                f"{k}={v}" if _plain_string(v) else f"{k}={v!r}" for k, v in body["vars"].items()
            )
        if body.get("children"):
            lines.append(f"[{name}:children]")
            lines.extend(body["children"])
    return "\n".join(lines) + "\n"


def to_listing(doc: dict[str, Any]) -> dict[str, Any]:
    """The JSON an inventory script prints for --list (hosts with their expanded names)."""
    listing: dict[str, Any] = {"_meta": {"hostvars": {}}}
    hostvars = listing["_meta"]["hostvars"]
    for name, body in _top(doc):
        group = listing.setdefault(name, {})
        for pattern, host_vars in (body.get("hosts") or {}).items():
            for host in expand_range(pattern):
                group.setdefault("hosts", []).append(host)
                hostvars.setdefault(host, {}).update(host_vars or {})
        if body.get("vars"):
            group.setdefault("vars", {}).update(body["vars"])
        if body.get("children"):
            group.setdefault("children", []).extend(body["children"])
    return listing


def write_script(doc: dict[str, Any], path: Path, calls: Path | None = None) -> Path:
    """An executable dynamic inventory script for the document (--list and --host), which
    appends a line to `calls` each time it runs, when given."""
    listing = json.dumps(to_listing(doc), indent=1)
    record = (
        f"with open({str(calls)!r}, 'a') as log:\n    log.write(' '.join(sys.argv[1:]) + '\\n')\n"
        if calls is not None
        else ""
    )
    path.write_text(
        f"#!{sys.executable}\n"
        "import json, sys\n"
        f"{record}"
        f"LISTING = json.loads({listing!r})\n"
        "if sys.argv[1:] == ['--list']:\n"
        "    print(json.dumps(LISTING))\n"
        "elif sys.argv[1:2] == ['--host']:\n"
        "    print(json.dumps(LISTING['_meta']['hostvars'].get(sys.argv[2], {})))\n"
        "else:\n"
        "    sys.exit('usage: --list | --host HOST')\n"
    )
    path.chmod(0o755)
    return path
