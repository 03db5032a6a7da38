# control: WG-ARC-001
# changes: sets archive_mode = on (ALTER SYSTEM) and reloads; restarts PostgreSQL ($WG_SERVICE)
#   when the running server still has archive_mode off after the reload.
# disruptive: yes (restarts PostgreSQL)
mode=$(pg_sql "SHOW archive_mode;")
pending=$(pg_sql "SELECT pending_restart FROM pg_settings WHERE name = 'archive_mode';")
level=$(pg_sql "SHOW wal_level;")
configured=$(pg_sql "SELECT setting FROM pg_file_settings WHERE name = 'archive_mode' ORDER BY seqno DESC LIMIT 1;")
if [ "$mode" = always ] || [ "$configured" = always ]; then
  die "archive_mode is always (archiving on a standby too): turning it into on could stop a standby's archiving; not changing it"
fi
if [ "$level" = minimal ]; then
  die "wal_level is minimal: PostgreSQL will not start with archive_mode = on; fix WG-ARC-002 first"
fi
if [ "$mode" = on ] && [ "$pending" = f ]; then
  finish
  exit 0
fi
if [ "$configured" != on ]; then
  archiving_on() { pg_sql "ALTER SYSTEM SET archive_mode = on;" >/dev/null && reload_postgres; }
  change "ALTER SYSTEM SET archive_mode = on (was ${configured:-off}) and reload" archiving_on
fi
if [ "$mode" != on ]; then
  change "restart $WG_SERVICE to turn archiving on (running server: archive_mode = $mode)" restart_postgres
fi
finish
