#!/bin/bash
# breaks: the host has no base backup: every backup directory under /pg_backup is deleted (as
#   when a backup job has never run, or retention removed the last one).
# observe: /pg_backup is empty; archiving goes on as before.
set -euo pipefail
find /pg_backup -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
echo "removed every base backup in /pg_backup"
