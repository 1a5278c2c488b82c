"""Benchmark evaluators: NAS-Bench-101 and NAS-Bench-201 (NATS topology) lookups."""
