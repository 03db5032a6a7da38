# control: WG-SEL-003
# changes: adds (or modifies) the local file-context rule: semanage fcontext -a (or -m) -t $WG_SELINUX_ARCHIVE_TYPE
#   "$WG_ARCHIVE_DIR(/.*)?" and restorecon -Rv $WG_ARCHIVE_DIR (the seed's fix; chown is not
#   enough).
# disruptive: no (policy rule and relabel)
selinux_label_archive
finish
