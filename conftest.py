"""Thin on purpose: loads the walguard pytest plugin; all logic lives in walguard/plugin.py."""

pytest_plugins = ["walguard.plugin"]
