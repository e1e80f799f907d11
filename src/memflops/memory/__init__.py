"""Memory: storage lifetimes of one step, replayed as a timeline with a true peak."""
