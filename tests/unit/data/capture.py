"""Capture a lab host's real collector output and PostgreSQL facts for the parser tests:

    python tests/unit/data/capture.py db1 pristine   # collector-pristine.txt, pgfacts-pristine.json

The section token is the fixed one the tests use; everything else is the host's real output.
"""

from __future__ import annotations

import sys
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


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
