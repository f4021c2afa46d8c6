"""Zoo cases: tree (being written)."""

CASES: list = []
