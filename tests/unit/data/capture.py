"""Capture a lab host's real collector output and PostgreSQL facts for the parser tests:

    python tests/unit/data/capture.py db1 pristine   # collector-pristine.txt, pgfacts-pristine.json
    python tests/unit/data/capture.py db1 pristine --psql   # psql-pristine.txt
    python tests/unit/data/capture.py db1 no-server --psql --port 5499   # psql-no-server.txt

`--psql`: the PostgreSQL facts' section as psql on the host prints it after the collector (the
output of `true` followed by it), optionally against another port.

The section token is the fixed one the tests use; everything else is the host's real output.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from walguard.facts import postgres as pgfacts
from walguard.facts.collect import _pg_conninfo, collector_command
from walguard.facts.transport import Connection
from walguard.inventory.load import load_inventory
from walguard.lab import settings

TOKEN = "@@WG-0123456789abcdef@@"
HERE = Path(__file__).parent


def main(host: str, name: str) -> None:
    target = next(t for t in load_inventory(settings.INVENTORY_PATH) if t.name == host)
    conn = Connection(target)
    try:
        conn.open()
        reply = conn.run_raw(
            collector_command(target.policy, target.connect, TOKEN), become=target.become
        )
        (HERE / f"collector-{name}.txt").write_bytes(reply.raw_stdout)
        _, raw = pgfacts.fetch(_pg_conninfo(conn, target, target.connect), timeout_s=10)
        (HERE / f"pgfacts-{name}.json").write_text(raw + "\n")
    finally:
        conn.close()


def psql_section(host: str, name: str, port: int | None) -> None:
    target = next(t for t in load_inventory(settings.INVENTORY_PATH) if t.name == host)
    connect = dataclasses.replace(target.connect, pg_port=port) if port else target.connect
    conn = Connection(target)
    try:
        conn.open()
        reply = conn.run_raw("true", then=pgfacts.psql_section(connect, TOKEN))
        (HERE / f"psql-{name}.txt").write_bytes(reply.raw_stdout)
    finally:
        conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("name")
    parser.add_argument("--psql", action="store_true")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.psql:
        psql_section(args.host, args.name, args.port)
    else:
        main(args.host, args.name)
