"""Benchmarks of the hook path (``python -m benchmarks``); not part of the installed package."""
