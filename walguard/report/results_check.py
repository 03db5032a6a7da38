"""A results.json that walguard did not just write itself (a shard given to `walguard merge`, a
run given to `walguard export`), checked before anything is built from it: it must be as
walguard writes it (results.schema.json), and its run id and host names must be names walguard
itself writes before any path or identifier is made of them.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from walguard.history.previous import RUN_NAME
from walguard.inventory.model import bad_name
from walguard.report import results_json

_SCHEMA: jsonschema.protocols.Validator | None = None


class UnfitResults(ValueError):
    """results.json is not as walguard writes it; the message says where and why, in one line."""


def schema() -> jsonschema.protocols.Validator:
    global _SCHEMA
    if _SCHEMA is None:
        loaded = json.loads(results_json.SCHEMA_PATH.read_text(encoding="utf-8"))
        _SCHEMA = jsonschema.Draft202012Validator(loaded)
    return _SCHEMA


def short(text: str, limit: int = 200) -> str:
    """A hostile value quoted in one line of an error, not pages of it."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check(doc: Any, where: str) -> dict[str, Any]:
    """`doc` itself when it is a results.json walguard writes; else UnfitResults, naming
    `where` (the file as the operator knows it)."""
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or version != results_json.SCHEMA_VERSION:
        raise UnfitResults(f"{where}: schema version {version}, not {results_json.SCHEMA_VERSION}")
    try:
        problem = jsonschema.exceptions.best_match(schema().iter_errors(doc))
    except RecursionError:
        raise UnfitResults(f"{where}: nested too deeply to be a results.json") from None
    if problem is not None:
        raise UnfitResults(f"{where}: {problem.json_path}: {short(problem.message)}")
    run_id = doc["run"]["id"]
    if not RUN_NAME.fullmatch(run_id):
        raise UnfitResults(f"{where}: run.id {short(repr(run_id))} is not a run name walguard "
                           "writes (YYYYMMDDTHHMMSSZ-xxxxxx)")  # fmt: skip
    for name, host in doc["hosts"].items():
        why = bad_name(name)
        if why is not None:
            raise UnfitResults(f"{where}: hosts: host name {short(repr(name))} is refused ({why})")
        for record in host["controls"]:
            if record["host"] != name:
                raise UnfitResults(f"{where}: hosts.{name}: a result of host "
                                   f"{short(repr(record['host']))}")  # fmt: skip
    return doc
