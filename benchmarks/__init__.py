"""Benchmarks: what the engine costs beside the database work it cannot avoid.

``python -m benchmarks [--quick] [--db sqlite|postgresql] [--json]``; see
``benchmarks/README.md`` for what each figure means and the last figures measured.
"""
