"""Thin on purpose: loads the walguard pytest plugin; its hooks are in walguard/plugin.py."""

pytest_plugins = ["walguard.plugin"]
