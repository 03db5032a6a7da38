"""Signed runs: a SHA-256 manifest of every file of a run directory, a CMS detached signature over
it (manifest.p7s), an optional RFC 3161 timestamp of that signature, and their verification
with the openssl command-line tool (`walguard verify`)."""
