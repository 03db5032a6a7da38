#!/bin/bash
# breaks: the newest archived segment is root's with mode 0600 (a copy made by hand as root):
#   an audit reading as root sees it fine, but restore_command runs as postgres and recovery
#   would stop at it.
# observe: the newest 24-hex file in /pg_archive is root:root 600.
# may-fail: WG-RST-001: while it holds the newest base backup's WAL, pg_verifybackup (run as
#   postgres, as recovery would) cannot read it.
set -euo pipefail
newest=$(find /pg_archive -maxdepth 1 -type f -regextype posix-extended -regex '.*/[0-9A-F]{24}' -printf '%f\n' | sort | tail -n 1)
[ -n "$newest" ] || { echo "no archived segment in /pg_archive" >&2; exit 1; }
chown root:root -- "/pg_archive/$newest"
chmod 0600 -- "/pg_archive/$newest"
echo "made $newest root's, mode 0600"
