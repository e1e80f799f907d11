"""reduction rules (to be filled)."""
