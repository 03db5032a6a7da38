# control: WG-ARC-004
# changes: sets archive_command (ALTER SYSTEM) to the form that compares an existing archived
#   segment (cmp) instead of reporting success blindly, and reloads.
# disruptive: no (reload)
set_archive_command
finish
