#!/bin/bash
# breaks: the newest archived segment is cut to its first 8192 bytes, as a copy interrupted by a
#   crash or a full disk leaves it; the guarded archive_command (test -f || cp) would then treat
#   the partial file as archived forever.
# observe: the newest 24-hex file in /pg_archive is a regular file of 8192 bytes (not 16 MiB);
#   its name is still there, so the archive looks complete by name; archiving still works.
# may-fail: WG-ACT-004 WG-RST-001: the truncated segment is the last archived one until the next
#   switch (then only WG-ACT-007); while it holds the newest base backup's WAL, pg_verifybackup
#   cannot read it.
set -euo pipefail
newest=$(find /pg_archive -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | tail -n 1)
[ -n "$newest" ] || { echo "no archived segment in /pg_archive" >&2; exit 1; }
truncate -s 8192 -- "/pg_archive/$newest"
echo "truncated $newest to 8192 bytes"
