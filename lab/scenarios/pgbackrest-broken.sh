#!/bin/bash
# breaks: pgBackRest's repository loses the stanza's archive metadata: on top of
#   pgbackrest-archiving (stanza main, repository /pg_archive/pgbackrest, archive_command
#   'pgbackrest --stanza=main archive-push %p', one segment archived through it),
#   archive/main/archive.info and its archive.info.copy are deleted from the repository.
# observe: `sudo -u postgres pgbackrest --stanza=main check` fails; after pg_switch_wal() the
#   archiver fails (pg_stat_archiver.failed_count rises): archive-push cannot load archive.info.
# base: pgbackrest-archiving
set -euo pipefail
rm -f /pg_archive/pgbackrest/archive/main/archive.info /pg_archive/pgbackrest/archive/main/archive.info.copy
echo "removed the stanza's archive.info and archive.info.copy"
