#!/bin/bash
# breaks: nothing while the server runs: shared_buffers = '1TB' is left in a conf.d file without a
#   reload, as a change meant for the next restart can be. Once a reload reads it, the setting
#   waits for a restart, and that restart fails: the host cannot map so much shared memory.
# observe: conf.d/50-walguard-lab-planted.conf holds shared_buffers = '1TB'; SHOW shared_buffers
#   is still 128MB; pg_file_settings lists the planted line.
set -euo pipefail
conf=/etc/postgresql/15/main/conf.d/50-walguard-lab-planted.conf
printf "shared_buffers = '1TB'\n" > "$conf"
chown postgres:postgres "$conf"
