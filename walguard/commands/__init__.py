"""The `walguard` subcommands, one module each."""
