#!/bin/bash
# breaks: pgBackRest's repository loses the stanza's archive metadata: the same setup as
#   pgbackrest-archiving (stanza main, repository /pg_archive/pgbackrest, archive_command
#   'pgbackrest --stanza=main archive-push %p', one segment archived through it), then
#   archive/main/archive.info and its archive.info.copy are deleted from the repository.
# observe: `sudo -u postgres pgbackrest --stanza=main check` fails; after pg_switch_wal() the
#   archiver fails (pg_stat_archiver.failed_count rises): archive-push cannot load archive.info.
set -euo pipefail
q() { runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
cat > /etc/pgbackrest.conf <<'CONF'
# walguard lab: pgBackRest archives into a repository on the dedicated archive volume.
[global]
repo1-path=/pg_archive/pgbackrest
log-level-console=warn
log-level-file=info

[main]
pg1-path=/var/lib/postgresql/15/main
CONF
chown postgres:postgres /etc/pgbackrest.conf
chmod 0640 /etc/pgbackrest.conf
install -d -o postgres -g postgres -m 0750 /pg_archive/pgbackrest
runuser -u postgres -- pgbackrest --stanza=main stanza-create
q "ALTER SYSTEM SET archive_command = 'pgbackrest --stanza=main archive-push %p'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
# The archiver rereads its configuration on the reload's SIGHUP: give it a moment.
sleep 1
before=$(q "SELECT archived_count FROM pg_stat_archiver")
q "SELECT txid_current()" >/dev/null
last=$(q "SELECT pg_walfile_name(pg_switch_wal())")
for _ in $(seq 1 100); do
  [ "$(q "SELECT archived_count FROM pg_stat_archiver")" -gt "$before" ] && break
  sleep 0.1
done
if ! find /pg_archive/pgbackrest/archive/main -name "$last-*" | grep -q .; then
  echo "pgBackRest did not archive $last" >&2
  exit 1
fi
runuser -u postgres -- pgbackrest --stanza=main check
echo "archived $last through pgBackRest"
rm -f /pg_archive/pgbackrest/archive/main/archive.info /pg_archive/pgbackrest/archive/main/archive.info.copy
echo "removed the stanza's archive.info and archive.info.copy"
