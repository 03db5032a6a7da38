# walguard fact collector: POSIX sh, read-only, one run per host per audit.
# Every section is raw command output framed by a per-run random token, so that nothing a file or
# command prints can forge a section boundary. The controller parses the sections; this script
# interprets nothing. Parameters arrive as environment variables (already shell-quoted by the
# controller): WG_TOKEN, WG_ARCHIVE_DIR, WG_SERVICE, WG_T (per-command timeout, seconds).
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH LC_ALL=C

section() {
  name=$1; shift
  printf '%s BEGIN %s\n' "$WG_TOKEN" "$name"
  timeout "$WG_T" "$@" 2>&1
  rc=$?
  printf '\n%s END %s %s\n' "$WG_TOKEN" "$name" "$rc"
}

section id id -u
section hostname hostname
section os_release cat /etc/os-release
section date date -u +%s
section archive_stat stat -L -c '%U|%G|%a|%F|%u|%g' -- "$WG_ARCHIVE_DIR"
section archive_mount findmnt -n -P -T "$WG_ARCHIVE_DIR" -o TARGET,SOURCE,FSTYPE,OPTIONS
section archive_df df -P -B1 -- "$WG_ARCHIVE_DIR"
section archive_files find "$WG_ARCHIVE_DIR" -mindepth 1 -maxdepth 1 -printf '%f|%y|%s|%T@\n'
section service_active systemctl is-active -- "$WG_SERVICE"
# SELinux: only where the kernel has it (nspawn hosts have no /sys/fs/selinux).
section selinux_enforce cat /sys/fs/selinux/enforce
if [ -r /sys/fs/selinux/enforce ]; then
  section getenforce getenforce
  section selinux_config cat /etc/selinux/config
  section sestatus sestatus
  section archive_context stat -c %C -- "$WG_ARCHIVE_DIR"
  section archive_file_contexts find "$WG_ARCHIVE_DIR" -mindepth 1 -maxdepth 1 -type f -printf '%Z|%f\n'
  section matchpathcon matchpathcon -- "$WG_ARCHIVE_DIR"
  section fcontext_local semanage fcontext -l -C
  section restorecon_dryrun restorecon -n -v -R -- "$WG_ARCHIVE_DIR"
  section ps_context ps -eZ
  # --input-logs: without it and without a terminal, ausearch reads stdin and finds nothing.
  section avc ausearch --input-logs -m avc -ts boot
fi
