"""Paired remediation: plan, apply under the host lock, verify by judging again."""
