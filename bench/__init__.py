"""Reproducible benchmarks: ``python -m bench`` (all) or ``python -m bench matcher`` (one)."""
