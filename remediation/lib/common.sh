# shellcheck shell=bash
# Helpers shared by walguard's remediation scripts. The runner prepends this file to a script and
# runs the result with bash, as root (sudo), on the host. Every value a script uses comes from
# the environment (set by the runner from the policy, shell-quoted), never from the script text:
#   WG_RUN        check (print what would change, change nothing) or apply
#   WG_CONTROL    the control id;  WG_CHANGE_REF  the change ticket ("none" when not given)
#   WG_ARCHIVE_DIR, WG_OWNER, WG_GROUP, WG_RESTORE_USER (who restore_command runs as),
#   WG_DIR_MODE (the first allowed mode), WG_ALLOWED_MODES,
#   WG_ARCHIVE_TIMEOUT_S, WG_RPO_S, WG_SERVICE, WG_RESTART_TIMEOUT_S (how long a restart may take)
# and what the facts read just before the scripts ran say (so that a script can refuse a fix
# that could make things worse):
#   WG_ARCHIVE_KIND       how the server archives: copy, tool, library, approved, unknown, none
#   WG_JUDGED_COMMAND     the archive_command those facts hold
#   WG_ARCHIVE_TARGET_DIR the directory a local copy writes into;  WG_REQUIRE_MOUNT  yes or no
#   WG_PG_SOCKET_DIR, WG_PG_PORT   the audited cluster (never psql's default one)
#   WG_SYSTEM_ID, WG_DATA_DIR      what the audit read of it: pg_sql refuses another cluster
set -euo pipefail
: "${WG_RUN:?}" "${WG_CONTROL:?}"
WG_CHANGE_REF=${WG_CHANGE_REF:-none}
case $WG_RUN in check|apply) ;; *) echo "WG_RUN must be check or apply" >&2; exit 2 ;; esac

wg_changed=0

# change "what it does" COMMAND...: apply it and log it to the journal, or (check) only say it.
change() {
  local what=$1
  shift
  wg_changed=1
  if [ "$WG_RUN" = check ]; then
    echo "would: $what"
    return 0
  fi
  "$@"
  echo "changed: $what"
  logger -t walguard -- "$WG_CONTROL: $what (change ${WG_CHANGE_REF})"
}

finish() {
  if [ "$wg_changed" = 0 ]; then
    echo "nothing to change"
  fi
}

die() {
  echo "refusing: $*" >&2
  exit 3
}

# SQL as the postgres superuser; values go in as psql variables (:'name' quotes them as literals),
# never pasted into the SQL text.
# Exactly the audited cluster (its socket directory and port), and only once it is proven to be
# the one the audit read: same system identifier and data directory.
wg_cluster_checked=0
pg_psql() {
  runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 \
    -h "${WG_PG_SOCKET_DIR:-/var/run/postgresql}" -p "${WG_PG_PORT:-5432}" "$@"
}
pg_sql() {
  local sql=$1
  shift
  if [ "$wg_cluster_checked" = 0 ] && [ -n "${WG_SYSTEM_ID:-}" ]; then
    local sysid datadir
    sysid=$(printf '%s\n' "SELECT system_identifier FROM pg_control_system();" | pg_psql)
    datadir=$(printf '%s\n' "SHOW data_directory;" | pg_psql)
    if [ "$sysid" != "$WG_SYSTEM_ID" ] || [ "$datadir" != "${WG_DATA_DIR:-}" ]; then
      die "the server on port ${WG_PG_PORT:-5432} is not the audited cluster (system identifier $sysid, data directory $datadir; the audit read $WG_SYSTEM_ID, ${WG_DATA_DIR:-?})"
    fi
    wg_cluster_checked=1
  fi
  printf '%s\n' "$sql" | pg_psql "$@"
}

# A restart bounded by WG_RESTART_TIMEOUT_S: a unit that never leaves "activating" (Debian's
# postgresql@.service ignores a failed start and waits for its PID file without a timeout) must
# not hold the host's remediation for the script's whole timeout. systemd's start job goes on;
# the staged restart's gates judge what came of it.
restart_postgres() {
  if ! timeout -k 5 "${WG_RESTART_TIMEOUT_S:-120}" systemctl restart -- "$WG_SERVICE"; then
    echo "the restart of $WG_SERVICE did not complete within ${WG_RESTART_TIMEOUT_S:-120} s (systemctl: $(systemctl is-active -- "$WG_SERVICE"))" >&2
    return 1
  fi
}

reload_postgres() {
  pg_sql "SELECT pg_reload_conf();" >/dev/null
}

# archive_command runs in a shell: only a plain path may be put into it.
safe_archive_command() {
  case $WG_ARCHIVE_DIR in
    /*) ;;
    *) die "archive dir '$WG_ARCHIVE_DIR' is not an absolute path" ;;
  esac
  if ! [[ $WG_ARCHIVE_DIR =~ ^/[A-Za-z0-9._/-]+$ ]]; then
    die "archive dir '$WG_ARCHIVE_DIR' has characters that are unsafe inside archive_command"
  fi
  local d=${WG_ARCHIVE_DIR%/}
  # Identical existing segment: success; different one: failure; missing: copy.
  printf 'if [ -f %s/%%f ]; then cmp -s %%p %s/%%f; else cp %%p %s/%%f; fi' "$d" "$d" "$d"
}

# Only a local copy (or nothing) is ever replaced by the guarded copy: a tool, a library or a
# wrapper walguard cannot read may be what gets WAL off this host, and a local cp instead would
# stop that while every local check turned green.
set_archive_command() {
  local want current library
  want=$(safe_archive_command)
  current=$(pg_sql "SHOW archive_command;")
  library=$(pg_sql "SELECT coalesce((SELECT setting FROM pg_settings WHERE name = 'archive_library'), '');")
  if [ -n "$library" ]; then
    die "archive_library is set ('$library'): also setting archive_command would stop the archiver (PostgreSQL refuses both); not changing it"
  fi
  case ${WG_ARCHIVE_KIND:-unread} in
    copy|none) ;;
    tool) die "archive_command is an archiving tool ('$current'): replacing it with a local copy would stop WAL leaving this host; not changing it" ;;
    *) die "archive_command is ${WG_ARCHIVE_KIND:-unread} to walguard ('$current'): replacing it could stop real archiving; review it, or approve it in walguard_archive_command_approved" ;;
  esac
  if [ "$current" != "${WG_JUDGED_COMMAND-}" ]; then
    die "archive_command changed since the audit read it (now '$current'); audit again first"
  fi
  if [ -n "${WG_ARCHIVE_TARGET_DIR:-}" ] && [ "${WG_ARCHIVE_TARGET_DIR%/}" != "${WG_ARCHIVE_DIR%/}" ]; then
    die "archive_command copies into $WG_ARCHIVE_TARGET_DIR, not the policy's $WG_ARCHIVE_DIR: moving the archive is a decision, not a fix"
  fi
  if [ "$current" != "$want" ]; then
    change "ALTER SYSTEM SET archive_command = '$want' (was '$current') and reload" \
      pg_sql "ALTER SYSTEM SET archive_command = :'want'; SELECT pg_reload_conf();" -v "want=$want"
  fi
}

# The seed's fix: a persistent file-context rule for the archive directory (added, or modified
# when one with another type exists), then restorecon to put the policy's label on disk.
selinux_label_archive() {
  : "${WG_SELINUX_ARCHIVE_TYPE:?}"
  [ -r /sys/fs/selinux/enforce ] || die "SELinux is not enabled on this host"
  if ! [[ $WG_ARCHIVE_DIR =~ ^/[A-Za-z0-9._/-]+$ ]]; then
    die "archive dir '$WG_ARCHIVE_DIR' has characters that are unsafe in a file-context regex"
  fi
  local d=${WG_ARCHIVE_DIR%/}
  local spec="$d(/.*)?"
  local existing
  existing=$(semanage fcontext -l -C | awk -v s="$spec" '$1 == s {print $NF}')
  if [ -z "$existing" ]; then
    change "semanage fcontext -a -t $WG_SELINUX_ARCHIVE_TYPE '$spec'" \
      semanage fcontext -a -t "$WG_SELINUX_ARCHIVE_TYPE" "$spec"
  elif [ "$(printf '%s' "$existing" | cut -d: -f3)" != "$WG_SELINUX_ARCHIVE_TYPE" ]; then
    change "semanage fcontext -m -t $WG_SELINUX_ARCHIVE_TYPE '$spec' (was $existing)" \
      semanage fcontext -m -t "$WG_SELINUX_ARCHIVE_TYPE" "$spec"
  fi
  local drift
  drift=$(restorecon -n -v -R -- "$d")
  if [ -n "$drift" ] || { [ "$WG_RUN" = check ] && [ "$wg_changed" = 1 ]; }; then
    change "restorecon -Rv $d" restorecon -R -v -- "$d"
  fi
}
