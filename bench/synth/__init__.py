"""Synthetic clinical corpora written in the real release layouts (no real patient text)."""
