"""Real networks on loopback for the tests and the benchmarks: impairment (loss, delay, reordering)."""
