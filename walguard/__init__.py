"""walguard: compliance-as-code for PostgreSQL point-in-time recovery."""

__version__ = "0.1.0"
