"""attention rules (to be filled)."""
