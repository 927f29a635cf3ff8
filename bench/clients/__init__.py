"""Minimal client scripts, one process per run: ``python -m bench.clients.NAME``."""
