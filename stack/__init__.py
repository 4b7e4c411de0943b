"""Starts the whole system on one machine: `python -m stack mock` or `python -m stack test`."""
