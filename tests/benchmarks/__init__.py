"""Performance benchmarks (not part of the pytest run): ``python -m tests.benchmarks --help``."""
