"""Benchmarks: our engine path against the baselines' way of computing the same thing."""
