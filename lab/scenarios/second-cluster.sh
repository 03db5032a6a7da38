#!/bin/bash
# breaks: nothing on the main cluster: a second PostgreSQL 15 cluster, 15/second on port 5433
#   (pg_createcluster, started by systemd as postgresql@15-second), archives like the main one
#   but into its own directory: archive_mode on, wal_level replica, archive_timeout 60,
#   archive_command 'test -f /pg_archive/second/%f || cp %p /pg_archive/second/%f' with
#   /pg_archive/second owned by postgres, 0750; the audit role walguard (pg_monitor, EXECUTE on
#   pg_switch_wal) logs in by peer auth as on the main cluster; one switched segment is archived.
# observe: psql -p 5433 as walguard: SHOW archive_mode is on, pg_stat_archiver.archived_count is
#   at least 1 with no failure, and its last_archived_wal is in /pg_archive/second; the main
#   cluster on 5432 is untouched (pristine).
set -euo pipefail
MODE=on
q() { runuser -u postgres -- psql -p 5433 -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
pg_createcluster 15 second -p 5433 >/dev/null
install -d -o postgres -g postgres -m 0750 /pg_archive/second
conf=/etc/postgresql/15/second/conf.d/10-walguard-archive.conf
cat > "$conf" <<CONF
# The second cluster archives into its own directory on the archive volume.
archive_mode = $MODE
archive_command = 'test -f /pg_archive/second/%f || cp %p /pg_archive/second/%f'
archive_timeout = 60
wal_level = replica
# TLS with the host's lab certificate (clients name the host, whichever port).
ssl_cert_file = '/etc/walguard-lab/tls/server.crt'
ssl_key_file = '/etc/walguard-lab/tls/server.key'
CONF
chown postgres:postgres "$conf"
systemctl start postgresql@15-second.service
for _ in $(seq 1 100); do
  runuser -u postgres -- pg_isready -q -p 5433 && break
  sleep 0.1
done
q "CREATE ROLE walguard LOGIN IN ROLE pg_monitor" >/dev/null
q "GRANT EXECUTE ON FUNCTION pg_switch_wal() TO walguard" >/dev/null
q "SELECT txid_current()" >/dev/null
q "SELECT pg_switch_wal()" >/dev/null
if [ "$MODE" = on ]; then
  for _ in $(seq 1 100); do
    [ "$(q "SELECT archived_count FROM pg_stat_archiver")" -gt 0 ] && break
    sleep 0.1
  done
  last=$(q "SELECT last_archived_wal FROM pg_stat_archiver")
  if [ -z "$last" ] || [ ! -f "/pg_archive/second/$last" ]; then
    echo "15/second archived nothing" >&2
    exit 1
  fi
  echo "15/second archived $last into /pg_archive/second"
fi
