"""Converters: preprocessing (being written)."""
