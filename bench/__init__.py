"""Benchmarks of shared-estate: `make bench` (python -m bench). Not part of `make test`."""
