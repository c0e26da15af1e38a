"""Simulated hardware for tests, the demo and the benchmarks: umockdev testbeds shaped like a real kernel."""
