"""Sync: `rules` (pure), `done_states` (a type's done states, cached), `inbound` (a change applied to the linked
tracked issues), `reconcile` (a work item's current state, for lost deliveries)."""
