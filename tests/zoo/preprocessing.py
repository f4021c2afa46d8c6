"""Zoo cases: preprocessing (being written)."""

CASES: list = []
