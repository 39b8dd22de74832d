"""Claims registry, golden store, verdicts and the tolerance report (one source of truth for
pytest, the CLI and the report)."""
