"""Benchmarks for the voice agent against its targets (latency, CPU, memory, start-up): `python -m bench`.
See bench/README.md."""
