"""The restore drill (--restore-drill): restore the newest base backup into a scratch cluster on
the host and replay the archive to a target time between two canary rows (drill.sh); what it
shows is read by walguard.facts.drill_result; how it is run over the host's connection (run) and
what results.json keeps of it (record)."""
