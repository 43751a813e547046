"""Stores for I5's results, judgments and overrides on real databases."""
