"""The LLM proposer (placeholder until the adapter lands)."""
