# walguard restore drill (WG-RST-003/004), run as root on the database host, only when the
# operator asks for it (walguard audit --restore-drill). It writes canary row A, takes target
# time T, writes canary row B, switches WAL and waits until the switched segment is archived;
# then restores the newest plain-format base backup into a scratch cluster and replays the
# archive to T. The scratch cluster never touches production: no TCP listener, its socket in a
# private 0700 directory, archive_mode off, no primary_conninfo, a restore_command that only
# reads the archive, its own configuration file and the backup's postgresql.auto.conf emptied
# (every setting it needs is on its command line), memory and CPU limits, nice and ionice, a deadline; one drill per host at a
# time (a lock); the scratch directory is always removed, and one left by a killed drill is
# removed by the next (and named).
#
# With a restore host (DORA's segregated system: walguard_restore_host) the drill runs in two
# phases (WG_PHASE): "canary" on the database host (the canaries, the switch, the wait for the
# archive), then "restore" on the restore host, which reads the host's archive and backups at its
# own paths and is handed the canaries' id, the target and the switched segment
# (WG_CANARY_ID, WG_TARGET_TIME, WG_SWITCHED); "all" (the default) does both on one host.
#
# Every step is a section framed by the run's token, like the collector's. Parameters arrive as
# environment variables, already validated and shell-quoted by the controller: WG_TOKEN,
# WG_PHASE, WG_BACKUP_DIR, WG_ARCHIVE_DIR (its real path), WG_SCRATCH_DIR, WG_PG_OWNER,
# WG_SERVICE, WG_PG_SOCKET_DIR, WG_PG_PORT, WG_CANARY_DB, WG_ARCHIVE_WAIT_S, WG_DEADLINE_S,
# WG_MEMORY_MAX, WG_CPU_QUOTA; with pgBackRest's backups (WG_SOURCE=pgbackrest, on the host
# itself) also WG_STANZA and what its info said of the newest backup: WG_PGBR_SET (the label),
# WG_PGBR_SIZE, WG_PGBR_START_WAL and WG_PGBR_WAL_BYTES (the WAL to replay, estimated).
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH LC_ALL=C
umask 077

section_begin() { printf '%s BEGIN %s\n' "$WG_TOKEN" "$1"; }
section_end() { printf '\n%s END %s %s\n' "$WG_TOKEN" "$1" "$2"; }
# A step that cannot go on: its section ends with the status, and the drill stops there.
stop() { echo "$2"; section_end "$1" "$3"; exit 0; }
now() { date +%s.%N; }

as_owner() { runuser -u "$WG_PG_OWNER" -- "$@"; }
primary_sql() {
  as_owner psql -XAtq -v ON_ERROR_STOP=1 -h "$WG_PG_SOCKET_DIR" -p "$WG_PG_PORT" \
    -d "$WG_CANARY_DB" -c "$1"
}

WG_PHASE=${WG_PHASE:-all}
WG_SOURCE=${WG_SOURCE:-pg_basebackup}
# The running server's own programs (its version reads its backups and WAL); on a restore host,
# which need not run a server, those of the backup's major version (Debian's or PGDG's layout).
PGBIN=
if [ "$WG_PHASE" = all ]; then
  PGBIN=$(readlink "/proc/$(systemctl show -p MainPID --value -- "$WG_SERVICE")/exe" 2>/dev/null)
  PGBIN=${PGBIN% (deleted)}; PGBIN=${PGBIN%/*}
fi
backup_bindir() {
  local v
  v=$(head -c 8 -- "$1/PG_VERSION" 2>/dev/null | tr -dc '0-9')
  for d in "/usr/lib/postgresql/$v/bin" "/usr/pgsql-$v/bin"; do
    [ -n "$v" ] && [ -x "$d/postgres" ] && { echo "$d"; return; }
  done
}

LOCK="$WG_SCRATCH_DIR/.walguard-drill.lock"
RUN="$WG_SCRATCH_DIR/walguard-drill-$(date -u +%Y%m%dT%H%M%SZ)-$$"
PID=
# The scratch server down (fast shutdown, then immediate, then killed), whatever started it; its
# postmaster.pid names it even where runuser stands between this script and it.
stop_server() {
  local dir=$1 pid=
  [ -f "$dir/postmaster.pid" ] && pid=$(head -n 1 "$dir/postmaster.pid")
  case $pid in ''|*[!0-9]*) pid=$PID ;; esac
  [ -n "$pid" ] || return 0
  for sig in INT QUIT KILL; do
    kill -0 "$pid" 2>/dev/null || return 0
    kill -"$sig" "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  done
}
cleanup() {
  [ -d "$RUN" ] && stop_server "$RUN/data"
  [ -n "$PID" ] && wait "$PID" 2>/dev/null
  [ -d "$RUN" ] && rm -rf --one-file-system -- "$RUN"
}
trap cleanup EXIT
trap 'exit 143' INT TERM HUP

# Canary A, target T, canary B; the switched segment must reach the archive.
canaries() {
section_begin drill_canary
id="walguard-$(date -u +%Y%m%dT%H%M%SZ)-$$"
primary_sql "CREATE TABLE IF NOT EXISTS walguard_restore_drill (id text PRIMARY KEY, written timestamptz NOT NULL DEFAULT clock_timestamp())" >/dev/null \
  || stop drill_canary "cannot drill: cannot create the canary table in $WG_CANARY_DB" 2
utc="to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
a=$(primary_sql "INSERT INTO walguard_restore_drill (id) VALUES ('$id-A') RETURNING id, pg_current_wal_lsn(), $utc") \
  || stop drill_canary "cannot drill: canary A was not written" 2
sleep 1
target=$(primary_sql "SELECT $utc")
sleep 1
b=$(primary_sql "INSERT INTO walguard_restore_drill (id) VALUES ('$id-B') RETURNING id, pg_current_wal_lsn(), $utc") \
  || stop drill_canary "cannot drill: canary B was not written" 2
switched=$(primary_sql "SELECT pg_walfile_name(pg_switch_wal())")
sysid=$(primary_sql "SELECT system_identifier FROM pg_control_system()")
echo "a $a"; echo "target $target"; echo "b $b"; echo "switched $switched"; echo "sysid $sysid"
# Archived: the file in the archive; with pgBackRest (a repository of compressed files) the
# archiver's word, which archive-push gives only once the segment is in the repository.
archived() {
  if [ "$WG_SOURCE" = pgbackrest ]; then
    [ "$(primary_sql "SELECT left(coalesce(last_archived_wal, ''), 24) >= '$switched' FROM pg_stat_archiver")" = t ]
  else
    [ -f "$WG_ARCHIVE_DIR/$switched" ]
  fi
}
waited=0
until archived; do
  [ "$waited" -lt "$WG_ARCHIVE_WAIT_S" ] || stop drill_canary "cannot drill: $switched was not archived within $WG_ARCHIVE_WAIT_S s" 3
  sleep 1; waited=$((waited + 1))
done
echo "archived $switched after ${waited} s"
section_end drill_canary 0
}

if [ "$WG_PHASE" = canary ]; then
  canaries
  exit 0
fi

section_begin drill_prepare
[ "$WG_PHASE" = restore ] || [ -x "${PGBIN:-/nonexistent}/postgres" ] || stop drill_prepare "cannot drill: the server's binary directory was not found ($WG_SERVICE)" 2
[ -d "$WG_SCRATCH_DIR" ] || stop drill_prepare "cannot drill: the scratch directory $WG_SCRATCH_DIR does not exist" 2
# Both go into the scratch server's restore_command, which PostgreSQL runs through a shell: only
# a plain path may (the archive's is its real path on the host, which no policy checked).
for place in "$WG_ARCHIVE_DIR" "$WG_SCRATCH_DIR"; do
  case $place in
    /*[!A-Za-z0-9/._+-]*|[!/]*) stop drill_prepare "cannot drill: $place is not a plain path (letters, digits and / . _ + -): it would go into a restore_command" 2 ;;
  esac
done
scratch_real=$(readlink -f -- "$WG_SCRATCH_DIR")
data_real=
[ "$WG_PHASE" = all ] && data_real=$(readlink -f -- "$(primary_sql 'SHOW data_directory' 2>/dev/null)" 2>/dev/null)
for other in "$data_real" "$(readlink -f -- "$WG_ARCHIVE_DIR")" "$(readlink -f -- "$WG_BACKUP_DIR")"; do
  [ -n "$other" ] || continue
  case "$scratch_real/" in
    "$other"/*) stop drill_prepare "cannot drill: the scratch directory $scratch_real is inside $other" 2 ;;
  esac
  case "$other/" in
    "$scratch_real"/*) stop drill_prepare "cannot drill: $other is inside the scratch directory $scratch_real" 2 ;;
  esac
done
exec 9>>"$LOCK" || stop drill_prepare "cannot drill: cannot open the lock $LOCK" 2
# A restore host drills for several hosts: a drill waits its turn, for at most half its time.
flock -w $((WG_DEADLINE_S / 2)) 9 || stop drill_prepare "cannot drill: another drill held $LOCK for $SECONDS s" 75
# Whatever a killed drill left behind (this one holds the lock, so none is running).
for old in "$WG_SCRATCH_DIR"/walguard-drill-*; do
  [ -d "$old" ] || continue
  # Only a postmaster of that directory: its pid file, and /proc saying it is a postgres.
  if [ -f "$old/data/postmaster.pid" ]; then
    pid=$(head -n 1 "$old/data/postmaster.pid")
    case $pid in
      ''|*[!0-9]*) ;;
      *) [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$old/data")" ] \
           && stop_server "$old/data" ;;
    esac
  fi
  rm -rf --one-file-system -- "$old" && echo "stale $old removed"
done
if [ "$WG_SOURCE" = pgbackrest ]; then
  # The newest backup as pgBackRest's info named it at this audit (restored by that label).
  command -v pgbackrest >/dev/null || stop drill_prepare "cannot drill: pgbackrest is not installed" 2
  echo "backup $WG_PGBR_SET"
  echo "source pgbackrest stanza $WG_STANZA"
  start_seg=$WG_PGBR_START_WAL backup_bytes=$WG_PGBR_SIZE wal_bytes=$WG_PGBR_WAL_BYTES
else
  # The newest plain-format backup by its label's START TIME.
  best=; at=
  for d in "$WG_BACKUP_DIR"/*; do
    [ -f "$d/backup_label" ] || continue
    t=$(sed -n 's/^START TIME: //p' "$d/backup_label" | head -n 1)
    if [ -z "$best" ] || expr "$t" \> "$at" >/dev/null; then best=$d; at=$t; fi
  done
  [ -n "$best" ] || stop drill_prepare "cannot drill: no plain-format base backup in $WG_BACKUP_DIR" 2
  echo "backup ${best##*/}"
  if [ "$WG_PHASE" = restore ]; then
    PGBIN=$(backup_bindir "$best")
    [ -n "$PGBIN" ] || stop drill_prepare "cannot drill: no PostgreSQL $(head -c 8 -- "$best/PG_VERSION" 2>/dev/null | tr -dc '0-9') server programs on this restore host" 2
    echo "restore_host $(hostname) $PGBIN"
    # What the host archived must be readable here too (a share may show it later).
    waited=0
    until [ -f "$WG_ARCHIVE_DIR/$WG_SWITCHED" ]; do
      [ "$waited" -lt "$WG_ARCHIVE_WAIT_S" ] || stop drill_prepare "cannot drill: $WG_SWITCHED, archived on the host, is not in $WG_ARCHIVE_DIR on this restore host within $WG_ARCHIVE_WAIT_S s" 3
      sleep 1; waited=$((waited + 1))
    done
    target=$WG_TARGET_TIME; id=$WG_CANARY_ID
  fi
  sed 's/^/label /' "$best/backup_label" | head -n 20
  start_seg=$(sed -n 's/^START WAL LOCATION: .*(file \([0-9A-F]\{24\}\))$/\1/p' "$best/backup_label")
  backup_bytes=$(du -sb -- "$best" | cut -f 1)
  wal_bytes=$(find "$WG_ARCHIVE_DIR" -maxdepth 1 -type f -name '????????????????????????' \
    -newer "$best/backup_label" -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
fi
need=$(( backup_bytes + wal_bytes + 64 * 1024 * 1024 ))
avail=$(df -P -B1 -- "$WG_SCRATCH_DIR" | awk 'NR == 2 { print $4 }')
echo "start_wal $start_seg"
echo "space backup=$backup_bytes wal=$wal_bytes need=$need avail=$avail"
[ "$avail" -ge "$need" ] || stop drill_prepare "cannot drill: $WG_SCRATCH_DIR has $avail bytes free; the backup ($backup_bytes) and the WAL to replay ($wal_bytes) need $need" 28
echo "scratch $RUN"
section_end drill_prepare 0
[ "$WG_PHASE" = all ] && canaries

# The restore: copy, configure, start under limits, wait for the target.
section_begin drill_restore
t_start=$(now)
install -d -o "$WG_PG_OWNER" -m 0700 -- "$RUN" "$RUN/socket" "$RUN/data"
if [ "$WG_SOURCE" = pgbackrest ]; then
  # pgBackRest lays the backup down (it reads the repository only); no log file of its own in
  # production's log directory. Its recovery settings are beaten by the command line below.
  if ! as_owner pgbackrest --stanza="$WG_STANZA" --pg1-path="$RUN/data" --set="$WG_PGBR_SET" \
      --type=time --target="$target+00" --target-action=promote --archive-mode=off \
      --log-level-console=info --log-level-file=off restore > "$RUN/pgbackrest.log" 2>&1; then
    said=$(grep -m 1 'ERROR:' "$RUN/pgbackrest.log" || tail -n 1 "$RUN/pgbackrest.log")
    stop drill_restore "pgBackRest's restore failed: $said" 1
  fi
  grep -E 'restore backup set|restore size' "$RUN/pgbackrest.log" | sed 's/^/pgbackrest /'
  fetch="pgbackrest --no-archive-async --log-level-file=off --pg1-path=$RUN/data --stanza=$WG_STANZA archive-get %f \"%p\""
else
  as_owner cp -a -- "$best/." "$RUN/data/" || stop drill_restore "the backup could not be copied" 1
  fetch="cp \"$WG_ARCHIVE_DIR/%f\" \"%p\""
fi
rm -f -- "$RUN/data/backup_manifest" "$RUN/data/postmaster.pid"
# The backup's postgresql.auto.conf is production's (or, on a restore host, another host's): a
# command in it that the command line below does not name (recovery_end_command,
# archive_cleanup_command, a preload library) would run here. It is emptied: the scratch server
# reads only what this script gives it. pgBackRest's recovery settings in it are given again below.
[ -f "$RUN/data/postgresql.auto.conf" ] && : > "$RUN/data/postgresql.auto.conf"
as_owner touch "$RUN/data/recovery.signal" "$RUN/postgresql.conf" "$RUN/pg_ident.conf"
printf 'local all %s peer\n' "$WG_PG_OWNER" > "$RUN/pg_hba.conf"
chown "$WG_PG_OWNER" "$RUN/pg_hba.conf"
t_copied=$(now)
port=54329
limits="systemd-run --scope --quiet --collect -p MemoryMax=$WG_MEMORY_MAX -p CPUQuota=$WG_CPU_QUOTA --"
if ! $limits true >/dev/null 2>&1; then
  stop drill_restore "cannot drill: no resource-limited scope (systemd-run --scope failed)" 2
fi
echo "limits MemoryMax=$WG_MEMORY_MAX CPUQuota=$WG_CPU_QUOTA nice=10 ionice=idle"
# shellcheck disable=SC2086  # the words of the limits prefix, split on purpose
$limits runuser -u "$WG_PG_OWNER" -- nice -n 10 ionice -c 3 "$PGBIN/postgres" -D "$RUN/data" \
  -c config_file="$RUN/postgresql.conf" -c hba_file="$RUN/pg_hba.conf" \
  -c ident_file="$RUN/pg_ident.conf" -c data_directory="$RUN/data" \
  -c listen_addresses= -c port="$port" -c unix_socket_directories="$RUN/socket" \
  -c archive_mode=off -c archive_command= -c primary_conninfo= -c primary_slot_name= \
  -c restore_command="$fetch" \
  -c recovery_target_time="$target+00" -c recovery_target_action=promote \
  -c recovery_target_timeline=current -c hot_standby=off -c ssl=off \
  -c shared_preload_libraries= -c shared_buffers=32MB -c max_connections=20 \
  -c cluster_name=walguard-drill -c logging_collector=off -c log_destination=stderr \
  -c log_min_messages=log -c synchronous_standby_names= \
  > "$RUN/server.log" 2>&1 9>&- &
PID=$!
ready=
# Until the target is reached and the cluster promoted, the server stops (its log says why), or the
# deadline leaves only the time to clean up.
while [ -z "$ready" ]; do
  kill -0 "$PID" 2>/dev/null || break
  [ "$SECONDS" -lt $((WG_DEADLINE_S - 30)) ] || { echo "deadline: not ready within ${SECONDS} s"; break; }
  # Asked only once the server says it is ready: a connection refused during recovery would put
  # a FATAL line of its own into the log.
  if grep -q 'database system is ready to accept connections' "$RUN/server.log"; then
    out=$(as_owner psql -XAtq -h "$RUN/socket" -p "$port" -d postgres -c 'SELECT pg_is_in_recovery()' 2>&1)
    [ "$out" = f ] && ready=$(now) && break
    echo "answered: $out"; break
  fi
  sleep 0.2
done
echo "timing start=$t_start copied=$t_copied ready=${ready:-none}"
if [ -n "$ready" ]; then
  as_owner psql -XAtq -h "$RUN/socket" -p "$port" -d postgres \
    -c "SELECT 'sysid ' || system_identifier FROM pg_control_system()" \
    -c "SELECT 'lsn ' || pg_current_wal_lsn()"
  as_owner psql -XAtq -h "$RUN/socket" -p "$port" -d "$WG_CANARY_DB" \
    -c "SELECT 'canary_a ' || count(*) FROM walguard_restore_drill WHERE id = '$id-A'" \
    -c "SELECT 'canary_b ' || count(*) FROM walguard_restore_drill WHERE id = '$id-B'"
fi
section_end drill_restore "$([ -n "$ready" ] && echo 0 || echo 1)"

section_begin drill_log
head -c 65536 -- "$RUN/server.log"
section_end drill_log 0

section_begin drill_cleanup
cleanup
if [ -e "$RUN" ]; then echo "$RUN is still there"; section_end drill_cleanup 1
else echo "removed $RUN"; section_end drill_cleanup 0; fi
PID=
