"""The `walguard` subcommands, one module each, each registering its parser and its handler
(walguard.cli assembles them), and what they share: parsing (one usage error for all) and
pytest_usage (audit's, from pytest). What `walguard merge` does is walguard.merge.merged_run."""
