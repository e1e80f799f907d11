"""upsample rules (to be filled)."""
