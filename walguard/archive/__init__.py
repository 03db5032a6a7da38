"""Archive commands read as data: archive_command and archive_library, the tools walguard knows,
WAL file names."""
