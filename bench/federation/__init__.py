"""What travels and how it is combined: aggregation, payloads, compression, budgets, privacy, secure aggregation."""
