"""The audit as pytest runs it: controls as items, the run's state, facts fetched before judging,
the user's own controls."""
