"""Zoo cases: linear (being written)."""

CASES: list = []
