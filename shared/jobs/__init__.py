"""The timers: `sweep` (every active integration, paged, bounded, resumable) and the three jobs on it."""
