# control: WG-ARC-003
# changes: sets archive_command (ALTER SYSTEM) to the guarded form that never overwrites an
#   archived segment (identical: success, different: failure) and reloads.
# disruptive: no (reload)
set_archive_command
finish
