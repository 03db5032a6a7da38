# shellcheck shell=bash
# Helpers shared by walguard's remediation scripts. The runner prepends this file to a script and
# runs the result with bash, as root (sudo), on the host. Every value a script uses comes from
# the environment (set by the runner from the policy, shell-quoted), never from the script text:
#   WG_RUN        check (print what would change, change nothing) or apply
#   WG_CONTROL    the control id;  WG_CHANGE_REF  the change ticket ("none" when not given)
#   WG_ARCHIVE_DIR, WG_OWNER, WG_GROUP, WG_DIR_MODE (the first allowed mode), WG_ALLOWED_MODES,
#   WG_ARCHIVE_TIMEOUT_S, WG_RPO_S, WG_SERVICE
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
pg_sql() {
  local sql=$1
  shift
  printf '%s\n' "$sql" | runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 "$@"
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

set_archive_command() {
  local want current
  want=$(safe_archive_command)
  current=$(pg_sql "SHOW archive_command;")
  if [ "$current" != "$want" ]; then
    change "ALTER SYSTEM SET archive_command = '$want' and reload" \
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
