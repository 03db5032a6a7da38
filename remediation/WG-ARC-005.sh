# control: WG-ARC-005
# changes: sets archive_timeout (ALTER SYSTEM) to $WG_ARCHIVE_TIMEOUT_S seconds when it is off or
#   longer than the RPO, and reloads.
# disruptive: no (reload)
current=$(pg_sql "SELECT setting FROM pg_settings WHERE name = 'archive_timeout';")
if [ "$current" -eq 0 ] || [ "$current" -gt "$WG_RPO_S" ]; then
  change "ALTER SYSTEM SET archive_timeout = $WG_ARCHIVE_TIMEOUT_S (was $current s) and reload" \
    pg_sql "ALTER SYSTEM SET archive_timeout = :'t'; SELECT pg_reload_conf();" -v "t=$WG_ARCHIVE_TIMEOUT_S"
fi
finish
