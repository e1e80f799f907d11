"""rnn rules (to be filled)."""
