# walguard's staged restart (walguard audit --remediate=apply --allow-restart), run as root on a
# database host around its remediation scripts. One action per call (WG_GATE):
#   roles     what the host is in replication: primary or standby, its upstream, its standbys;
#   before    the gates before a restart: backups running, standbys' lag, the archiver's
#             backlog, free space on the data and archive volumes, settings already waiting
#             for a restart;
#   record    the way back: a copy of postgresql.auto.conf and the restart-only settings the
#             server runs with now, in WG_SAVE_DIR (root's, 0700);
#   after     the gates after it: connections accepted (within WG_TIMEOUT_S), nothing still
#             pending a restart, a WAL switch archived (within WG_ARCHIVE_WAIT_S), standbys
#             streaming again (as many as WG_STANDBYS_BEFORE);
#   rollback  the server put back as it ran before: the saved postgresql.auto.conf with the
#             recorded settings pinned after it, a restart, and connections accepted again;
#   watch     (in the background while the scripts run) one line per change of pg_isready's
#             answer, with the time: the downtime is read from it.
# Every part is a section framed by WG_TOKEN. Parameters arrive as environment variables,
# validated and shell-quoted by the controller: WG_GATE, WG_TOKEN, WG_PG_OWNER,
# WG_PG_SOCKET_DIR, WG_PG_PORT, WG_SERVICE, WG_ARCHIVE_DIR, WG_SAVE_DIR, WG_TIMEOUT_S,
# WG_ARCHIVE_WAIT_S, WG_STANDBYS_BEFORE.
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH LC_ALL=C
umask 077

section_begin() { printf '%s BEGIN %s\n' "$WG_TOKEN" "$1"; }
section_end() { printf '\n%s END %s %s\n' "$WG_TOKEN" "$1" "$2"; }
sql() {
  runuser -u "$WG_PG_OWNER" -- psql -XAtq -v ON_ERROR_STOP=1 -F '|' -h "$WG_PG_SOCKET_DIR" \
    -p "$WG_PG_PORT" -d postgres -c "$1"
}
ready() { runuser -u "$WG_PG_OWNER" -- pg_isready -q -t 2 -h "$WG_PG_SOCKET_DIR" -p "$WG_PG_PORT"; }
now() { date +%s.%N; }
# Until the server accepts connections, at most WG_TIMEOUT_S: "accepting after N s" or not.
wait_accepting() {
  local start
  start=$(now)
  for _ in $(seq 1 $((WG_TIMEOUT_S * 5))); do
    if ready; then echo "accepting after $(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"; return 0; fi
    sleep 0.2
  done
  echo "not accepting connections within $WG_TIMEOUT_S s"
  return 1
}

# shellcheck disable=SC2016  # SQL dollar quotes, not shell expansions
case $WG_GATE in
roles)
  section_begin roles
  sql 'SELECT CASE WHEN pg_is_in_recovery() THEN $$standby$$ ELSE $$primary$$ END'
  sql 'SELECT $$upstream|$$ || coalesce(sender_host, $$$$) FROM pg_stat_wal_receiver'
  sql 'SELECT $$standby|$$ || coalesce(host(client_addr), $$local$$) || $$|$$ || application_name
       FROM pg_stat_replication'
  section_end roles $?
  ;;
before)
  section_begin before
  sql 'SELECT $$basebackups|$$ || count(*) FROM pg_stat_progress_basebackup'
  # pgBackRest holds its backup lock file (lock-path, /tmp/pgbackrest by default) while a backup
  # runs: a lock that cannot be taken is a backup running.
  held=0
  for lock in /tmp/pgbackrest/*-backup.lock; do
    [ -e "$lock" ] || continue
    flock -n "$lock" true 2>/dev/null || held=$((held + 1))
  done
  echo "pgbackrest_locks|$held"
  sql 'SELECT $$lag|$$ || coalesce(host(client_addr), $$local$$) || $$|$$ || state || $$|$$ ||
       coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication'
  data=$(sql 'SHOW data_directory')
  echo "ready|$(find "$data/pg_wal/archive_status" -maxdepth 1 -name '*.ready' 2>/dev/null | wc -l)"
  for place in "$data" "$WG_ARCHIVE_DIR"; do
    df -P -- "$place" | awk -v p="$place" 'NR == 2 { sub("%", "", $5); print "space|" p "|" 100 - $5 }'
  done
  sql 'SELECT $$pending|$$ || name FROM pg_settings WHERE pending_restart ORDER BY name'
  section_end before $?
  ;;
record)
  section_begin record
  data=$(sql 'SHOW data_directory') || { echo "the server did not answer"; section_end record 1; exit 0; }
  install -d -m 0700 -- "$WG_SAVE_DIR" || { section_end record 1; exit 0; }
  cp -p -- "$data/postgresql.auto.conf" "$WG_SAVE_DIR/postgresql.auto.conf" || { section_end record 1; exit 0; }
  # The restart-only settings a configuration file sets, at the values the server runs with:
  # pinned after the saved file, they bring back the server as it ran (also past a change
  # someone left in a file for the next restart).
  # Where the files are is not pinned: the server found them, and they are not settings.
  sql 'SELECT s.name || $$ = $$ || quote_literal(current_setting(s.name)) FROM pg_settings s
       WHERE s.context = $$postmaster$$ AND s.name IN (SELECT name FROM pg_file_settings)
       AND s.name NOT IN ($$data_directory$$, $$config_file$$, $$hba_file$$, $$ident_file$$,
                          $$external_pid_file$$)
       ORDER BY s.name' > "$WG_SAVE_DIR/running.conf" || { section_end record 1; exit 0; }
  echo "data $data" > "$WG_SAVE_DIR/record.txt"
  echo "data $data"
  echo "saved $WG_SAVE_DIR"
  sed 's/^/running /' "$WG_SAVE_DIR/running.conf"
  section_end record 0
  ;;
after)
  section_begin after_accepting
  wait_accepting
  up=$?
  section_end after_accepting "$up"
  if [ "$up" != 0 ]; then
    # Nothing else can be asked of a server that does not answer: no waiting for it again.
    for gate in after_pending after_archiving after_standbys; do
      section_begin "$gate"
      echo "not checked: the server does not accept connections"
      section_end "$gate" 1
    done
    exit 0
  fi
  section_begin after_pending
  sql 'SELECT $$pending|$$ || name FROM pg_settings WHERE pending_restart ORDER BY name'
  section_end after_pending $?
  section_begin after_archiving
  if [ "$(sql 'SELECT pg_is_in_recovery()')" = t ]; then
    echo "standby: archives nothing of its own"
    ok=0
  else
    seg=$(sql 'SELECT pg_walfile_name(pg_switch_wal())')
    echo "switched $seg"
    ok=1
    for _ in $(seq 1 $((WG_ARCHIVE_WAIT_S * 5))); do
      [ "$(sql "SELECT left(coalesce(last_archived_wal, ''), 24) >= '$seg' FROM pg_stat_archiver")" = t ] && { ok=0; break; }
      sleep 0.2
    done
    if [ "$ok" = 0 ]; then echo "archived $seg"; else
      echo "not archived within $WG_ARCHIVE_WAIT_S s: $(sql 'SELECT coalesce(last_failed_wal, $$$$) || $$ failed $$ || failed_count FROM pg_stat_archiver')"
    fi
  fi
  section_end after_archiving "$ok"
  section_begin after_standbys
  n=0
  for _ in $(seq 1 $((WG_TIMEOUT_S * 5))); do
    n=$(sql "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    [ "$n" -ge "$WG_STANDBYS_BEFORE" ] && break
    sleep 0.2
  done
  echo "streaming $n of $WG_STANDBYS_BEFORE"
  section_end after_standbys "$([ "$n" -ge "$WG_STANDBYS_BEFORE" ] && echo 0 || echo 1)"
  ;;
rollback)
  section_begin rollback
  data=$(sed -n 's/^data //p' "$WG_SAVE_DIR/record.txt" 2>/dev/null)
  if [ -z "$data" ] || [ ! -f "$WG_SAVE_DIR/postgresql.auto.conf" ]; then
    echo "nothing recorded in $WG_SAVE_DIR: no way back"
    section_end rollback 1
    exit 0
  fi
  # Bounded: a start job that never ends (a unit waiting for its PID file) is cancelled by the
  # stop; a start that hangs again is for wait_accepting to judge.
  timeout -k 5 "$WG_TIMEOUT_S" systemctl stop -- "$WG_SERVICE"
  owner=$(stat -c %U -- "$data")
  { cat -- "$WG_SAVE_DIR/postgresql.auto.conf"
    echo "# walguard rollback $(date -u +%Y-%m-%dT%H:%M:%SZ): the restart-only settings the server ran with"
    cat -- "$WG_SAVE_DIR/running.conf"; } > "$data/postgresql.auto.conf.walguard"
  chown "$owner:" "$data/postgresql.auto.conf.walguard" && chmod 0600 "$data/postgresql.auto.conf.walguard"
  mv -f -- "$data/postgresql.auto.conf.walguard" "$data/postgresql.auto.conf"
  echo "restored $data/postgresql.auto.conf with $(wc -l < "$WG_SAVE_DIR/running.conf") setting(s) pinned"
  timeout -k 5 "$WG_TIMEOUT_S" systemctl start -- "$WG_SERVICE"
  wait_accepting
  section_end rollback $?
  ;;
watch)
  # Until killed: a line when pg_isready's answer changes (the first: what it was at the start).
  last=
  while :; do
    if ready; then s=up; else s=down; fi
    [ "$s" = "$last" ] || { echo "$s $(now)"; last=$s; }
    sleep 0.1
  done
  ;;
*)
  echo "unknown gate action $WG_GATE" >&2
  exit 2
  ;;
esac
