"""Growing decks: propose cards (deterministic strategies or an LLM), check, store as pending.

Nothing here writes a deck: a proposal enters a deck only through `grader.review`.
"""
