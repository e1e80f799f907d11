"""embedding rules (to be filled)."""
