"""Other systems the benchmarks measure Streamsite against, each a minimal project of its own
that runs in a virtualenv of its own (never the project's)."""
