"""Benchmarks: fetchrun's client and runner against aiohttp, httpx and curl."""
