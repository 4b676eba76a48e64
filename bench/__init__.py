"""Benchmarks for the voice agent (issue 3): `python -m bench`. See bench/README.md."""
