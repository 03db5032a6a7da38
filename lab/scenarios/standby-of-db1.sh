#!/bin/bash
# breaks: nothing is broken: the host (run it on db2, db3, ...; never on db1) becomes a streaming
#   standby of db1. Its own cluster is stopped and its data directory replaced by
#   pg_basebackup -R from db1 over the lab network, as the image's replication role replicator
#   (password in /etc/walguard-lab/replication.pgpass, root and postgres only; db1's pg_hba lets
#   replicator in from 10.231.0.0/24). db1's address comes from WALGUARD_LAB_DB1, which
#   `walguard lab scenario apply` sets from the lab settings. The host's own configuration stays
#   (archive_mode = on, so the standby archives nothing until promoted); its /pg_archive is left
#   untouched (it keeps the host's own earlier segments). On db1 the base backup leaves a backup
#   history file (NAME.XXXXXXXX.backup) as last_archived_wal until db1's next segment switch.
# observe: SELECT pg_is_in_recovery() is true; pg_stat_wal_receiver shows status streaming from
#   db1's address; a row written on db1 appears on this host.
set -euo pipefail
primary=${WALGUARD_LAB_DB1:?db1 address: set by walguard lab scenario apply}
if ip -4 -o addr show | grep -qF " $primary/"; then
  echo "standby-of-db1 must run on a host other than db1" >&2
  exit 1
fi
q() { runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
data=/var/lib/postgresql/15/main
systemctl stop postgresql@15-main.service
find "$data" -mindepth 1 -delete
runuser -u postgres -- env PGPASSFILE=/etc/walguard-lab/replication.pgpass \
  pg_basebackup -h "$primary" -p 5432 -U replicator -w -D "$data" -R -X stream -c fast
systemctl start postgresql@15-main.service
for _ in $(seq 1 300); do
  [ "$(q "SELECT status FROM pg_stat_wal_receiver" 2>/dev/null || true)" = streaming ] && break
  sleep 0.1
done
if [ "$(q "SELECT pg_is_in_recovery()")" != t ] || [ "$(q "SELECT status FROM pg_stat_wal_receiver")" != streaming ]; then
  echo "the standby does not stream from $primary" >&2
  exit 1
fi
echo "streaming from $primary"
