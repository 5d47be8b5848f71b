"""Benchmarks of Streamsite, each against the same work done directly on Redis.

Run one with `python -m bench NAME` (see `python -m bench --help`); results land in
`bench/results/`.
"""
