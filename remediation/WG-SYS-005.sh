# control: WG-SYS-005
# changes: reloads the server's configuration (pg_reload_conf) when files changed after the last
#   reload. Refuses while a setting waits for a restart (a reload cannot activate it) or while a
#   configuration line is in error (a reload would apply a partial configuration).
# disruptive: no (reload)
pending=$(pg_sql "SELECT string_agg(name, ', ') FROM pg_settings WHERE pending_restart;")
if [ -n "$pending" ]; then
  die "setting(s) $pending wait for a restart: a reload cannot activate them (plan a restart)"
fi
errors=$(pg_sql "SELECT string_agg(sourcefile || ':' || sourceline || ' ' || coalesce(name, '') || ': ' || error, '; ') FROM pg_file_settings WHERE error IS NOT NULL;")
if [ -n "$errors" ]; then
  die "configuration line(s) in error ($errors): a reload would apply a partial configuration"
fi
changed=$(pg_sql "SELECT count(*) FROM (SELECT DISTINCT sourcefile FROM pg_file_settings UNION SELECT setting FROM pg_settings WHERE name IN ('hba_file', 'ident_file')) f WHERE (pg_stat_file(f.sourcefile)).modification > pg_conf_load_time();")
if [ "$changed" -gt 0 ]; then
  change "reload the configuration ($changed file(s) changed since the last reload)" \
    pg_sql "SELECT pg_reload_conf();"
fi
finish
