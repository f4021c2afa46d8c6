"""Converters: linear (being written)."""
