"""Plain data, no I/O: what the stores keep and the rules change."""
