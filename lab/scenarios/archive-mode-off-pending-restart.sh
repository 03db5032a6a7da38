#!/bin/bash
# breaks: archive_mode is switched off in the configuration and the configuration is reloaded, but
#   PostgreSQL is not restarted: the running server still archives.
# observe: SHOW archive_mode is still on; pg_settings shows pending_restart = t for archive_mode
#   (ALTER SYSTEM wrote archive_mode = 'off' to postgresql.auto.conf).
set -euo pipefail
runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET archive_mode = off" -c "SELECT pg_reload_conf()" >/dev/null
