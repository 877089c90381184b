"""Test helpers that ship with the package: a loopback OpenAI-compatible server and fakes."""
