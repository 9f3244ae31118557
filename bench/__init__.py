"""Benchmarks of pleo-export: Pleo API calls, time at the rate limit, CPU, memory, throughput.

Run ``uv run python -m bench`` from the repository root; see docs/performance.md.
"""
