"""Work item lookups for the tracker (contract §4)."""
