"""elementwise rules (to be filled)."""
