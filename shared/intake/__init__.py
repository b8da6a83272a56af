"""What arrives over HTTP and is acknowledged fast: authenticated, queued, answered."""
