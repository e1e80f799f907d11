"""norm rules (to be filled)."""
