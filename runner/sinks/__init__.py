"""Output sinks for the runner: one module per output (JSONL, bodies, console, reports)."""
