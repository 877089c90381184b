"""LLM plumbing: the openai/instructor adapter, prompt templates, response schemas, call log."""
