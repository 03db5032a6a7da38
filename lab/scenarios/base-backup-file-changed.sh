#!/bin/bash
# breaks: one file of the newest base backup is changed after the backup, its size kept (a
#   corrupted or tampered backup): the byte of PG_VERSION "15" becomes "16".
# observe: /pg_backup/*/PG_VERSION says 16; the backup_manifest still lists the old checksum,
#   so `pg_verifybackup` reports a checksum mismatch.
set -euo pipefail
dir=$(find /pg_backup -mindepth 1 -maxdepth 1 -type d | sort | tail -n 1)
printf '16\n' > "$dir/PG_VERSION"
echo "changed $dir/PG_VERSION"
