"""The admin routes' validation and effect: validate completely, then write."""
