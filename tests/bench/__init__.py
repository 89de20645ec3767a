"""Benchmarks (`make bench`): real processes, real peers, figures printed and saved.

Not collected by pytest (modules are named ``bench_*.py``).
"""
