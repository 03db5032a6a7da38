"""The local lab: PostgreSQL hosts in nspawn containers, probe zones, break/fix scenarios."""
