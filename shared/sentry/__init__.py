"""Sentry: the only code that speaks HTTP to Sentry (contract §13)."""
