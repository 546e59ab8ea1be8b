"""Benchmarks, run by hand (see README): not part of the installed package."""
