"""Converters: ensemble (being written)."""
