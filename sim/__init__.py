"""Simulated hardware for tests, demo and benchmarks: umockdev testbeds like a real kernel."""
