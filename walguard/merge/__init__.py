"""`walguard merge`'s inputs: shards of one audit, read as hostile directories."""
