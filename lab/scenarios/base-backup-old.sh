#!/bin/bash
# breaks: the newest base backup is older than the policy allows (26 h): its backup_label's
#   START TIME is moved three days back (as when the nightly backup job has silently stopped).
# observe: /pg_backup/*/backup_label says START TIME three days ago.
set -euo pipefail
label=$(find /pg_backup -mindepth 2 -maxdepth 2 -name backup_label | sort | tail -n 1)
old=$(date -u -d '3 days ago' '+%Y-%m-%d %H:%M:%S')
sed -i "s/^START TIME: .*/START TIME: $old UTC/" "$label"
echo "$label now says START TIME: $old UTC"
