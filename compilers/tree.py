"""Converters: tree (being written)."""
