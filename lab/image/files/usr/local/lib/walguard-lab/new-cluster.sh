#!/bin/sh
# Run in each lab host's own layer (chroot) when the host is first made: a fresh initdb gives the
# host's cluster its own database system identifier, as real servers have. The image's cluster
# was made once and would give every host the same one, so a segment copied from another host's
# archive would look like this host's own. Configuration stays in /etc/postgresql (untouched);
# the roles the image made (the audit role, the replication role) are made again.
set -eu
data=/var/lib/postgresql/15/main
pw=$(sed -n 's/^\*:\*:\*:replicator://p' /etc/walguard-lab/replication.pgpass)
rm -rf "$data"
install -d -m 0700 -o postgres -g postgres "$data"
su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/initdb -D $data --auth-local peer --auth-host scram-sha-256 --encoding UTF8 --locale C.UTF-8 --no-instructions" >/dev/null
su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/postgres --single -D $data -c config_file=/etc/postgresql/15/main/postgresql.conf postgres" <<SQL >/dev/null
CREATE ROLE walguard LOGIN IN ROLE pg_monitor;
GRANT EXECUTE ON FUNCTION pg_switch_wal() TO walguard;
CREATE ROLE replicator LOGIN REPLICATION PASSWORD '$pw';
SQL
