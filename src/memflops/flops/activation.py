"""activation rules (to be filled)."""
