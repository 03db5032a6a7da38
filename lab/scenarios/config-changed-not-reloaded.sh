#!/bin/bash
# breaks: a configuration change written to the files but never reloaded (a partial change).
# observe: conf.d/40-walguard-lab-change.conf exists; SHOW log_min_duration_statement is still -1.
set -euo pipefail
printf 'log_min_duration_statement = 1000\n' > /etc/postgresql/15/main/conf.d/40-walguard-lab-change.conf
chown postgres:postgres /etc/postgresql/15/main/conf.d/40-walguard-lab-change.conf
