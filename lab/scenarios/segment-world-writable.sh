#!/bin/bash
# breaks: the newest archived segment is writable by everyone (0666): anyone on the host, not
#   only the archive's group, could rewrite WAL that a recovery would replay.
# observe: the newest 24-hex file in /pg_archive has mode 666; its owner is still postgres.
set -euo pipefail
newest=$(find /pg_archive -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | tail -n 1)
[ -n "$newest" ] || { echo "no archived segment in /pg_archive" >&2; exit 1; }
chmod 0666 -- "/pg_archive/$newest"
echo "made $newest writable by everyone"
