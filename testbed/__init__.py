"""Real networks on loopback for the tests and the benchmarks: a coturn server (``turn``, with ``tls``
for TURN over TLS), free ports (``ports``) and impairment (``impair``: loss, delay, reordering)."""
