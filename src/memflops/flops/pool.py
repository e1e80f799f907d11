"""pool rules (to be filled)."""
