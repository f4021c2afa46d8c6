"""Converters: pipeline (being written)."""
