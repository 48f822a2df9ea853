"""Benchmarks: latency statistics, accuracy on the test split, memory, environment fingerprint."""
