#!/bin/bash
# breaks: on top of second-cluster (15/second on port 5433, archiving into /pg_archive/second),
#   the second cluster's archive_mode is turned off (ALTER SYSTEM, then a restart of
#   postgresql@15-second): from then on it archives nothing, while the main cluster on 5432 is
#   untouched.
# observe: psql -p 5433 as walguard: SHOW archive_mode is off and archive_command shows
#   (disabled); after a WAL switch no new file reaches /pg_archive/second; the main cluster on
#   5432 is pristine (an audit by port 5433 fails while 5432 passes).
# base: second-cluster
set -euo pipefail
q() { runuser -u postgres -- psql -p 5433 -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
q "ALTER SYSTEM SET archive_mode = off" >/dev/null
systemctl restart postgresql@15-second.service
for _ in $(seq 1 100); do
  runuser -u postgres -- pg_isready -q -p 5433 && break
  sleep 0.1
done
if [ "$(q "SHOW archive_mode")" != off ]; then
  echo "15/second still has archive_mode on" >&2
  exit 1
fi
echo "15/second no longer archives (archive_mode off)"
